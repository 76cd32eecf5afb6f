"""Tests for pspnet_edu.training.config: validation, the typed model inside, the round trip."""

from __future__ import annotations

import dataclasses
import math

import pytest

from pspnet_edu.pspnet import PRESETS, PSPNetConfig
from pspnet_edu.training import TrainConfig, config_from_dict, config_to_dict
from pspnet_edu.training.config import config_differences


def test_model_is_a_typed_config_and_the_whole_config_is_hashable() -> None:
    config = TrainConfig()
    assert isinstance(config.model, PSPNetConfig) and config.model == PRESETS["tiny"]
    assert all(not isinstance(f.type, str) or "dict[str, Any]" not in f.type for f in dataclasses.fields(TrainConfig))
    assert hash(config) == hash(TrainConfig())  # frozen, with no mutable field


def test_round_trip_through_a_checkpoint_dict() -> None:
    config = TrainConfig(model=dataclasses.replace(PRESETS["paper"], bins=(1, 2), use_ppm=True), crop=(64, 96),
                         scale=(0.75, 1.5), val_split=None)
    saved = config_to_dict(config)
    assert isinstance(saved["model"], dict) and saved["model"]["bins"] == (1, 2)
    assert config_from_dict(saved) == config
    lists = {**saved, "crop": [64, 96], "scale": [0.75, 1.5], "model": {**saved["model"], "bins": [1, 2]}}
    assert config_from_dict(lists) == config  # what JSON gives back


def test_unknown_fields_say_which_and_why() -> None:
    saved = config_to_dict(TrainConfig())
    with pytest.raises(ValueError, match=r"training settings this release does not know \(preset\)"):
        config_from_dict({**saved, "preset": "tiny"})
    with pytest.raises(ValueError, match=r"model with fields this release does not know \(colour\)"):
        config_from_dict({**saved, "model": {**saved["model"], "colour": 3}})


def test_differences_name_model_fields_too() -> None:
    a, b = TrainConfig(), TrainConfig(lr=0.02, model=dataclasses.replace(PRESETS["tiny"], use_ppm=False))
    assert config_differences(a, b) == ["lr: 0.01 -> 0.02", "model.use_ppm: True -> False"]
    assert config_differences(a, b, ignore=frozenset({"lr"})) == ["model.use_ppm: True -> False"]


@pytest.mark.parametrize("changes, message", [
    ({"alpha": -0.1}, "alpha"), ({"alpha": math.nan}, "alpha"), ({"iters": 0}, "iters must be a positive"),
    ({"lr": math.inf}, r"lr must be a finite positive number, got inf; the paper uses 0\.01"),
    ({"lr": 0.0}, "lr must be"), ({"batch_size": -2}, "batch_size"), ({"momentum": 1.0}, "momentum"),
    ({"scale": (2.0, 0.5)}, "scale"), ({"scale": (0.5, math.inf)}, "scale"), ({"crop": (0, 64)}, "crop"),
    ({"precision": "int8"}, "precision"), ({"log_every": 0}, "log_every"), ({"model": "tiny"}, "PSPNetConfig"),
    ({"iters": "500"}, r"iters must be an integer, got '500' \(str\)"), ({"channels_last": 1}, "True or False"),
    ({"seed": 2**64}, r"seed must be an integer from 0 to 9223372036854775807"),  # torch: "Overflow when unpacking"
])
def test_bad_settings_get_a_sentence_that_says_what_works(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)
