"""Which data a checkpoint was trained on: described by its source, found again on another machine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from cli_fixtures import data, one_line_error, restore_threads, run  # noqa: F401 (fixtures)
from pspnet_edu.cli import main
from pspnet_edu.data.synthetic import SYNTHCITY_VERSION, generate_synthetic
from pspnet_edu.training import load_checkpoint
from pspnet_edu.training.trained_on import data_source, describe_source, other_data_note, training_data


def test_a_synthcity_set_is_described_by_its_options_not_its_folder(data, tmp_path) -> None:
    source = data_source(data)
    assert source == {"kind": "synthcity", "version": SYNTHCITY_VERSION,
                      "options": {"train": 4, "val": 2, "size": [48, 96], "seed": 0}}
    assert describe_source(source) == f"Synthcity v{SYNTHCITY_VERSION} (seed 0, 4 train + 2 val, 48x96)"
    copy = shutil.copytree(data, tmp_path / "elsewhere")
    assert data_source(copy) == source  # the same set wherever it lies


def test_another_folder_is_described_by_name_and_fingerprint(data, tmp_path) -> None:
    copy = Path(shutil.copytree(data, tmp_path / "mine"))
    (copy / "manifest.json").unlink()
    source = data_source(copy)
    assert source["kind"] == "folder" and source["name"] == "mine" and source["fingerprint"].startswith("files:")


def test_a_run_finds_its_folder_while_it_holds_the_same_data(run, data) -> None:
    saved = load_checkpoint(run)
    assert training_data(saved, "run") == Path(data)
    assert other_data_note(saved, data, "run") is None


def test_a_folder_that_now_holds_other_data_is_refused_not_scored(run, data, tmp_path) -> None:
    """A relative --data in another working folder names another set: say so instead of scoring it."""
    saved = load_checkpoint(run)
    other = generate_synthetic(tmp_path / "other", train=4, val=2, size=(48, 96), seed=5)
    moved = {**saved, "config": {**saved["config"], "data": str(other)}}
    with pytest.raises(ValueError, match="now holds other data"):
        training_data(moved, "run")
    gone = {**saved, "config": {**saved["config"], "data": str(tmp_path / "gone")}}
    with pytest.raises(FileNotFoundError, match="not on this machine; pass --data"):
        training_data(gone, "run")
    assert "is not the data run was trained on" in other_data_note(saved, other, "run")


def test_a_synthcity_source_other_than_the_default_says_how_to_make_it(run, data) -> None:
    saved = {**load_checkpoint(run), "data_source": data_source(data)}  # 4 + 2 images: not the default set
    with pytest.raises(ValueError, match=r"pspnet-edu data synthetic --train 4 --val 2 --size 48x96 --seed 0"):
        training_data(saved, "run")
    old = {**saved, "data_source": {**saved["data_source"], "version": SYNTHCITY_VERSION - 1}}
    with pytest.raises(ValueError, match="this release draws"):
        training_data(old, "run")


def test_export_writes_no_folder_of_this_machine_and_evaluates_anywhere(run, data, tmp_path, capsys,
                                                                        monkeypatch) -> None:
    out = tmp_path / "exported" / "model.pt"
    assert main(["export", "--checkpoint", f"{run}/last.pt", "--out", str(out), "--threads", "1"]) == 0
    exported = torch.load(out, weights_only=True)
    assert exported["data_source"] == data_source(data) and exported["config"]["data"] == describe_source(
        data_source(data))
    assert str(tmp_path) not in out.with_suffix(".json").read_text()
    capsys.readouterr()
    # Elsewhere the set is not the default Synthcity: the error gives the command that makes it.
    monkeypatch.chdir(tmp_path)
    error = one_line_error(capsys, ["evaluate", "--checkpoint", str(out)])
    assert "pspnet-edu data synthetic --train 4 --val 2 --size 48x96 --seed 0 --out DIR" in error
    assert main(["evaluate", "--checkpoint", str(out), "--data", data, "--threads", "1"]) == 0
    assert capsys.readouterr().err == ""  # the right data: no note


def test_a_portable_config_names_no_folder_of_this_machine() -> None:
    from pspnet_edu.training.trained_on import portable_config

    source = {"kind": "folder", "name": "synthcity"}
    config = portable_config({"data": "/srv/ann/data/synthcity", "out": "/scratch/sweeps/B1236-avg/seed0"}, source)
    assert config["out"] == ".../B1236-avg/seed0" and "/srv" not in str(config) and "/scratch" not in str(config)
    assert portable_config({"data": "x", "out": "runs/a"}, source)["out"] == "runs/a"
