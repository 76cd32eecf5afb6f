"""Tests for pspnet_edu.training.export and `pspnet-edu export`: small weights that score what their sidecar says."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cli_fixtures import SMALL, data, one_line_error, restore_threads, run  # noqa: F401 (fixtures)
from pspnet_edu.cli import main
from pspnet_edu.data.synthetic import SYNTHCITY_VERSION


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
