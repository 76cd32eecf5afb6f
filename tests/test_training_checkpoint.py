"""Tests for pspnet_edu.training.checkpoint: safe loading, clear errors, the first release's format."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pspnet_edu.pspnet import PRESETS, build_pspnet
from pspnet_edu.training import load_checkpoint, model_from_checkpoint, saved_config
from pspnet_edu.training.checkpoint import CHECKPOINT_FORMAT, OLD_FORMAT, save_checkpoint
from pspnet_edu.training.config import TrainConfig, config_to_dict


def v2_checkpoint(model=None, config: TrainConfig | None = None) -> dict:
    config = config or TrainConfig(model=dataclasses.replace(PRESETS["tiny"], num_classes=5))
    model = model or build_pspnet("tiny", num_classes=5)
    return {"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "config": config_to_dict(config)}


def test_a_saved_checkpoint_rebuilds_the_model_and_loads_with_weights_only(tmp_path) -> None:
    model = build_pspnet("tiny", num_classes=5).eval()
    save_checkpoint(tmp_path / "last.pt", v2_checkpoint(model))
    torch.load(tmp_path / "last.pt", weights_only=True)  # no pickled code inside
    rebuilt = model_from_checkpoint(tmp_path)  # a run folder works too
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(rebuilt(x)["out"], model(x)["out"])
    assert saved_config(load_checkpoint(tmp_path)).model.num_classes == 5
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_a_checkpoint_of_the_first_release_still_evaluates_but_does_not_resume(tmp_path) -> None:
    model = build_pspnet("tiny", num_classes=5).eval()
    old = {"format": OLD_FORMAT, "model": model.state_dict(), "model_config": dataclasses.asdict(model.config),
           "config": {"preset": "tiny", "num_classes": 5, "overrides": {}, "crop": [128, 256]}}
    torch.save(old, tmp_path / "last.pt")
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(model_from_checkpoint(tmp_path / "last.pt")(x)["out"], model(x)["out"])
    with pytest.raises(ValueError, match="first release.*not resume it: start a new run"):
        saved_config(load_checkpoint(tmp_path))


@pytest.mark.parametrize("content, message", [
    (b"", r"is empty \(0 bytes"),
    (b"not a checkpoint", "corrupt or not a PyTorch file"),
    (None, "train first"),
])
def test_unreadable_files_get_one_sentence(tmp_path, content, message) -> None:
    path = tmp_path / "last.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_checkpoint(path)


def test_a_truncated_checkpoint_is_corrupt_not_an_index_error(tmp_path) -> None:
    save_checkpoint(tmp_path / "full.pt", v2_checkpoint())
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(tmp_path / "cut.pt")


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.pop("config"), "holds no training configuration"),
    (lambda c: c["config"]["model"].update(colour=3), r"does not know \(colour\)"),
    (lambda c: c["config"].update(preset="tiny"), r"settings this release does not know \(preset\)"),
    (lambda c: c["model"].pop("head.classifier.bias"), "do not fit the model its configuration describes"),
    (lambda c: c["model"].update({"head.classifier.weight": torch.zeros(3, 64, 1, 1)}), "do not fit"),
    (lambda c: c.update(format="pspnet-edu/train-v9"), "format 'pspnet-edu/train-v9'"),
    (lambda c: c.pop("model"), "not a pspnet-edu training checkpoint"),
    # edited by hand: a TypeError ("'>=' not supported between 'str' and 'int'") once
    (lambda c: c["config"]["model"].update(num_classes="19"), r"num_classes must be an integer, got '19' \(str\)"),
    (lambda c: c["config"].update(lr="0.01"), r"cannot be used \(lr must be a number, got '0.01'"),
])
def test_checkpoints_that_do_not_describe_their_model_get_clear_errors(tmp_path, edit, message) -> None:
    checkpoint = v2_checkpoint()
    edit(checkpoint)
    torch.save(checkpoint, tmp_path / "last.pt")
    with pytest.raises(ValueError, match=message):
        model_from_checkpoint(tmp_path / "last.pt")
