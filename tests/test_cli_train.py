"""`pspnet-edu train` end to end on a few tiny synthetic images, and its one-line errors."""

from __future__ import annotations

import json
import os

import pytest
import torch

from cli_fixtures import SMALL, data, one_line_error, restore_threads, run  # noqa: F401 (fixtures)
from pspnet_edu.cli import main


def test_train_writes_checkpoint_and_history(run) -> None:
    checkpoint = torch.load(f"{run}/last.pt", weights_only=True)
    assert {"model", "iteration", "config"} <= checkpoint.keys() and checkpoint["iteration"] == 2
    assert checkpoint["config"]["crop"] == (48, 96)  # --crop 48x96
    history = json.loads(open(f"{run}/history.json").read())
    assert history["val"][-1]["iteration"] == 2 and len(history["val"][-1]["iou"]) == 19


def test_the_options_reach_the_config(data, tmp_path) -> None:
    out = tmp_path / "run"
    assert main(["train", "--data", data, "--out", str(out), "--iters", "1", "--batch-size", "2", "--crop", "48x96",
                 "--threads", "1", "--no-ppm", "--alpha", "0.2", "--lr", "0.03", "--no-channels-last",
                 "--val-split", "none", "--seed", "3"]) == 0
    config = torch.load(out / "last.pt", weights_only=True)["config"]
    assert config["model"]["use_ppm"] is False and config["alpha"] == 0.2 and config["lr"] == 0.03
    assert config["channels_last"] is False and config["val_split"] is None and config["seed"] == 3


@pytest.mark.parametrize("arguments, message", [
    (["--alpha", "-1"], "alpha"),
    (["--iters", "0"], "must be a positive integer"),
    (["--lr", "inf"], "must be a finite number, got 'inf'"),
    (["--lr", "nan"], "must be a finite number"),
    (["--resume"], "nothing to resume"),
    (["--data", "/nonexistent/folder"], "does not exist"),
    (["--device", "gpu"], "unknown device 'gpu'; use cpu, cuda, cuda:N or mps"),
    (["--crop", "0x0"], "--crop '0x0' is not a size"),
    (["--crop=-48x96"], "is not a size"),
    (["--crop", "48", "96"], "unrecognized arguments: 96"),  # the old two-token form: one token, HxW
    (["--val-split", "test"], "no validation split 'test' (splits found: train, val); pass --val-split SPLIT, or "
                              "--val-split none"),
])
def test_bad_input_gives_one_line_and_status_2(data, arguments, message, tmp_path, capsys) -> None:
    arguments = ["train", "--data", data, "--out", str(tmp_path / "run"), *SMALL, *arguments]
    try:
        error = one_line_error(capsys, arguments)
    except SystemExit as stop:  # argparse's own refusals: status 2, one line "error: ..."
        assert stop.code == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in error
    assert not (tmp_path / "run").exists()  # a failed run leaves no folder behind


def test_bad_seeds_and_link_loops_are_one_line(data, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:  # torch once said "Overflow when unpacking long long"
        main(["train", "--data", data, "--out", str(tmp_path / "run"), *SMALL, "--seed", "99999999999999999999"])
    assert stop.value.code == 2 and "--seed: must be an integer from 0 to" in capsys.readouterr().err
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert "symbolic link loop" in one_line_error(capsys, ["train", "--data", str(tmp_path / "loop"),
                                                           "--out", str(tmp_path / "run"), *SMALL])
    assert "symbolic link loop" in one_line_error(capsys, ["train", "--data", data, "--out", str(tmp_path / "loop"),
                                                           *SMALL])
    assert not (tmp_path / "run").exists()


def test_a_run_folder_with_a_non_utf8_name(data, tmp_path) -> None:
    """The lock file records the command, which holds the name: "'utf-8' codec can't encode character"."""
    out = tmp_path / os.fsdecode(b"run\xe9")
    assert main(["train", "--data", data, "--out", str(out), *SMALL, "--val-split", "none"]) == 0
    assert (out / "last.pt").is_file()


def test_ctrl_c_is_one_line_and_status_130(data, tmp_path, capsys, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("stopped during the final evaluation; the trained weights were saved to x/last.pt")

    monkeypatch.setattr("pspnet_edu.cli.train.train_from_config", interrupted)
    assert main(["train", "--data", data, "--out", str(tmp_path / "run"), *SMALL]) == 130
    error = capsys.readouterr().err.strip()
    assert error == "pspnet-edu train: stopped during the final evaluation; the trained weights were saved to x/last.pt"
