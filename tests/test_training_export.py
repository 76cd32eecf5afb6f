"""Tests for pspnet_edu.training.export and `pspnet-edu export`: small weights that score what their sidecar says."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import torch

from cli_fixtures import SMALL, data, one_line_error, restore_threads, run  # noqa: F401 (fixtures)
from pspnet_edu.cli import main
from pspnet_edu.data.synthetic import SYNTHCITY_VERSION, generate_synthetic


def test_export_writes_half_weights_and_a_sidecar_that_evaluate_reproduces(run, data, tmp_path, capsys) -> None:
    out = tmp_path / "model.pt"
    assert main(["export", "--checkpoint", f"{run}/last.pt", "--out", str(out), "--threads", "1"]) == 0
    slim = torch.load(out, weights_only=True)
    assert "optimizer" not in slim and all(v.dtype in (torch.float16, torch.int64) for v in slim["model"].values())
    assert out.stat().st_size < 0.4 * Path(f"{run}/last.pt").stat().st_size  # no optimiser state, half precision
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert {"val_miou", "training_command", "recipe", "provenance", "iterations"} <= set(sidecar)
    assert "train" in sidecar["training_command"] and sidecar["iterations"] == 2
    # The data named by what it is, not by a folder that exists only on the exporter's machine.
    assert sidecar["evaluation"] == f"whole image, fp32, split 'val' of Synthcity v{SYNTHCITY_VERSION} (seed 0, 4 train + 2 val, 48x96)"
    assert str(tmp_path) not in out.with_suffix(".json").read_text() and data not in out.with_suffix(".json").read_text()
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out), "--data", data, "--threads", "1"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"mIoU: {sidecar['val_miou']:.4f}"
    assert "--force" in one_line_error(capsys, ["export", "--checkpoint", f"{run}/last.pt", "--out", str(out)])


def test_weights_named_like_their_sidecar_are_refused_before_anything_is_written(run, tmp_path, capsys) -> None:
    """`--out model.json` wrote the sidecar over the weights and exited 0."""
    error = one_line_error(capsys, ["export", "--checkpoint", f"{run}/last.pt", "--out", str(tmp_path / "model.json")])
    assert "overwritten by their own sidecar" in error and "model.pt" in error
    assert not list(tmp_path.iterdir())


def test_a_full_disk_during_the_export_is_one_line_and_leaves_nothing(run, tmp_path, capsys, monkeypatch) -> None:
    """It printed "RuntimeError: [enforce fail at inline_container.cc:672] ... unexpected pos"."""
    def full_disk(state, file) -> None:
        file.write(b"PK\x03\x04")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:  # torch reports it as a RuntimeError raised while handling the OSError
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None

    monkeypatch.setattr(torch, "save", full_disk)
    error = one_line_error(capsys, ["export", "--checkpoint", f"{run}/last.pt", "--out", str(tmp_path / "m.pt")])
    assert "the disk is full" in error and "nothing was written" in error
    assert not list(tmp_path.iterdir())


def test_an_output_the_system_refuses_is_one_sentence(run, tmp_path, capsys, monkeypatch) -> None:
    """Not "[Errno 17] File exists: 'afile'" or "[Errno 30] Read-only file system"."""
    (tmp_path / "afile").write_text("x")
    error = one_line_error(capsys, ["export", "--checkpoint", f"{run}/last.pt", "--out", str(tmp_path / "afile" / "m.pt")])
    assert "afile is a file, not a folder" in error and "Errno" not in error
    import pspnet_edu.files as files

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    error = one_line_error(capsys, ["export", "--checkpoint", f"{run}/last.pt", "--out", str(tmp_path / "m.pt")])
    assert "cannot write into" in error and "Read-only file system" in error and "Errno" not in error


def test_a_run_whose_data_moved_is_exported_with_data_after_a_check(run, data, tmp_path, capsys) -> None:
    """The error asked for --data, which export did not have (a run trained with a relative --data path,
    exported from another folder); --data must hold the same data: no sidecar scored on other data."""
    moved = torch.load(f"{run}/last.pt", weights_only=False)
    moved["config"]["data"] = str(tmp_path / "gone")  # the run's data folder is not where the run says
    torch.save(moved, tmp_path / "last.pt")
    out = tmp_path / "model.pt"
    error = one_line_error(capsys, ["export", "--checkpoint", str(tmp_path / "last.pt"), "--out", str(out)])
    assert "not on this machine" in error and "--data" in error and not out.exists()
    other = generate_synthetic(tmp_path / "other", train=4, val=2, size=(48, 96), seed=1)
    error = one_line_error(capsys, ["export", "--checkpoint", str(tmp_path / "last.pt"), "--out", str(out),
                                    "--data", str(other)])
    assert "holds other data" in error and not out.exists()
    assert main(["export", "--checkpoint", str(tmp_path / "last.pt"), "--out", str(out), "--data", data,
                 "--threads", "1"]) == 0
    assert main(["export", "--checkpoint", f"{run}/last.pt", "--out", str(tmp_path / "direct.pt"), "--threads", "1"]) == 0
    scores = [json.loads((tmp_path / name).read_text())["val_miou"] for name in ("model.json", "direct.json")]
    assert scores[0] == scores[1]  # the same data, wherever it was found
