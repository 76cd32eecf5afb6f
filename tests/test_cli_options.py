"""The command line: options a command would ignore are refused, renamed options, help and defaults from the library."""

from __future__ import annotations

import argparse
import functools

import pytest
import torch

from cli_fixtures import SMALL, data, one_line_error, restore_threads, run  # noqa: F401 (fixtures)
from pspnet_edu.cli import build_parser, main
from pspnet_edu.cli import ablate as ablate_cli
from pspnet_edu.experiments import ablate_alpha
from pspnet_edu.inference import evaluate, predict_probs


@pytest.mark.parametrize("arguments, message", [
    (["demo", "--no-ppm"], "--no-ppm would turn the demo into the no-PPM baseline against itself"),
    (["ablate", "ppm", "--no-ppm"], "--no-ppm is set by every variant"),
    (["ablate", "ppm", "--bins", "1"], "--bins is set by every variant"),
    (["ablate", "ppm", "--pooling", "max"], "--pooling is set by every variant"),
    (["ablate", "ppm", "--seed", "3"], "--seed does not apply: the ablations train seeds 0..N-1"),
    (["ablate", "alpha", "--seed", "3"], "use --num-seeds N"),
    (["ablate", "alpha", "--no-ppm"], "--no-ppm is the alpha sweep's default already"),
    (["ablate", "alpha", "--bins", "1"], "--bins, --pooling and --ppm-channels shape the PPM"),
    (["ablate", "alpha", "--ppm-channels", "64"], "add --with-ppm or drop them"),
    (["ablate", "alpha", "--pooling", "max"], "add --with-ppm or drop them"),
])
def test_an_option_the_command_would_ignore_is_refused_before_any_work(arguments, message, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    error = one_line_error(capsys, [*arguments, "--data", str(tmp_path / "no data"), "--out", str(out), *SMALL])
    assert message in error, error
    assert not out.exists()


def test_the_refused_options_are_not_offered_in_help() -> None:
    helps = {name: parser.format_help() for name, parser in _parsers(build_parser())}
    assert "--no-ppm" not in helps["demo"] and "--seed " not in helps["ablate alpha"]
    assert not {"--no-ppm", "--bins", "--pooling"} & set(helps["ablate ppm"].split())
    assert "--with-ppm" in helps["ablate alpha"] and "--no-ppm" in helps["train"]


def _refused(arguments: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main(arguments)
    assert stop.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_renamed_options_old_names_are_gone(capsys) -> None:
    assert "unrecognized arguments: --seeds 2" in _refused(["ablate", "ppm", "--seeds", "2"], capsys)
    assert "unrecognized arguments: --fp32" in _refused(["export", "--checkpoint", "c.pt", "--out", "m.pt", "--fp32"],
                                                        capsys)
    assert "unrecognized arguments: 96" in _refused(["evaluate", "--checkpoint", "c.pt", "--crop", "48", "96"], capsys)
    assert "must be a positive integer" in _refused(["evaluate", "--checkpoint", "c.pt", "--batch-size", "0"], capsys)


def test_num_seeds_reaches_the_sweep_and_defaults_to_the_librarys(monkeypatch, tmp_path) -> None:
    calls = []

    @functools.wraps(ablate_alpha)  # the same signature: the parser reads its defaults
    def record(base, **kwargs) -> None:
        calls.append(kwargs)

    monkeypatch.setattr(ablate_cli, "ablate_alpha", record)
    monkeypatch.setattr(ablate_cli, "config_from_args", lambda args, base: base)
    assert main(["ablate", "alpha", "--num-seeds", "3", "--out", str(tmp_path)]) == 0
    assert main(["ablate", "alpha", "--out", str(tmp_path)]) == 0
    assert [call["seeds"] for call in calls] == [3, 2] and ablate_alpha.__defaults__[1] == 2
    assert calls[0]["with_ppm"] is False  # the paper's Table 2 model unless --with-ppm


def test_sizes_are_hxw_or_n_everywhere() -> None:
    parse = build_parser().parse_args
    assert parse(["train", "--crop", "48x96"]).crop == (48, 96)
    assert parse(["demo", "--crop", "64"]).crop == (64, 64)
    assert parse(["predict", "a.png", "--checkpoint", "c.pt", "--out", "o", "--crop", "40x80"]).crop == (40, 80)
    assert parse(["rf", "resnet18", "--input", "96"]).input == (96, 96)


def test_export_precision_names_the_weights_storage(run, tmp_path) -> None:
    for precision, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        out = tmp_path / f"{precision}.pt"
        assert main(["export", "--checkpoint", f"{run}/last.pt", "--out", str(out), "--precision", precision]) == 0
        weights = torch.load(out, weights_only=True)["model"]
        assert {v.dtype for v in weights.values() if v.is_floating_point()} == {dtype}
    assert build_parser().parse_args(["export", "--checkpoint", "c", "--out", "o"]).precision == "fp16"


def test_inference_defaults_are_the_librarys() -> None:
    args = build_parser().parse_args(["evaluate", "--checkpoint", "c.pt"])
    assert tuple(args.scales) == predict_probs.__kwdefaults__["scales"]
    assert (args.batch_size, args.device) == (evaluate.__kwdefaults__["batch_size"], evaluate.__kwdefaults__["device"])


def _parsers(parser: argparse.ArgumentParser, name: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command's parser, named as typed (``ablate alpha``)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                found += _parsers(sub, f"{name} {command}".strip())
    return found or [(name, parser)]


def test_every_option_and_argument_has_help_and_shows_its_default() -> None:
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}: no help"
            shown = action.default in (None, False) or action.required or "default" in action.help
            assert shown, f"{name} {action.option_strings}: the help does not show the default {action.default!r}"


def test_ppm_channels_reaches_the_model_and_its_help_shows_the_recipe_default(tmp_path) -> None:
    from pspnet_edu.cli.options import config_from_args
    from pspnet_edu.experiments import DEMO_RECIPE

    parser = build_parser()
    args = parser.parse_args(["train", "--ppm-channels", "16", "--data", str(tmp_path)])
    assert config_from_args(args, DEMO_RECIPE).model.ppm_channels == 16
    args = parser.parse_args(["train", "--data", str(tmp_path)])
    assert config_from_args(args, DEMO_RECIPE).model.ppm_channels == DEMO_RECIPE.model.ppm_channels
    helps = {name: p.format_help() for name, p in _parsers(parser)}
    assert f"(default {DEMO_RECIPE.model.ppm_channels};" in " ".join(helps["demo"].split())


def test_head_lr_mult_reaches_the_config_and_a_bad_value_gets_a_sentence(tmp_path, capsys) -> None:
    from pspnet_edu.cli.options import config_from_args
    from pspnet_edu.experiments import DEMO_RECIPE

    parser = build_parser()
    for command in (["train"], ["demo"], ["ablate", "ppm"]):
        args = parser.parse_args([*command, "--head-lr-mult", "3", "--data", str(tmp_path)])
        assert config_from_args(args, DEMO_RECIPE).head_lr_mult == 3.0
    args = parser.parse_args(["train", "--data", str(tmp_path)])
    assert config_from_args(args, DEMO_RECIPE).head_lr_mult == DEMO_RECIPE.head_lr_mult == 1.0
    from pspnet_edu.training import TrainConfig

    assert config_from_args(args, TrainConfig()).head_lr_mult == 10.0
    out = tmp_path / "out"
    error = one_line_error(capsys, ["train", "--head-lr-mult", "0", "--data", str(tmp_path), "--out", str(out), *SMALL])
    assert "head_lr_mult must be a finite positive number, got 0.0" in error
    assert not out.exists()
    helps = {name: " ".join(p.format_help().split()) for name, p in _parsers(parser)}
    assert f"(default {DEMO_RECIPE.head_lr_mult:g};" in helps["demo"] and "(default 10;" in helps["train"]
