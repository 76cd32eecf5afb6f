"""The committed course checkpoints (data/checkpoints): safe to load, and they score what their sidecars say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pspnet_edu.constants import NUM_CLASSES
from pspnet_edu.data import CityscapesSegmentation, EvalTransforms, ensure_synthetic
from pspnet_edu.inference import evaluate, prepare_for_inference
from pspnet_edu.training import model_from_checkpoint

CHECKPOINTS = Path(__file__).resolve().parents[1] / "data" / "checkpoints"
NAMES = ("pspnet_tiny", "fcn_tiny", "pspnet_demo", "fcn_demo")  # 3,200 steps; the demo's 800 steps

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("name", NAMES)
def test_loads_with_weights_only_and_is_small(name) -> None:
    path = CHECKPOINTS / f"{name}.pt"
    saved = torch.load(path, weights_only=True)  # refuses pickled code
    assert path.stat().st_size <= 4 * 2**20 and "optimizer" not in saved
    sidecar = json.loads((CHECKPOINTS / f"{name}.json").read_text())
    assert {"val_miou", "training_command", "recipe", "iterations", "training_seconds", "provenance"} <= set(sidecar)
    assert sidecar["training_command"].startswith("pspnet-edu ")
    assert saved["config"]["model"]["use_ppm"] == name.startswith("pspnet")


@pytest.mark.parametrize("name", NAMES)
def test_the_recorded_val_miou_is_what_evaluation_gives(name) -> None:
    """``pspnet-edu evaluate --checkpoint data/checkpoints/NAME.pt`` computes exactly this (whole image, fp32)."""
    sidecar = json.loads((CHECKPOINTS / f"{name}.json").read_text())
    model = prepare_for_inference(model_from_checkpoint(CHECKPOINTS / f"{name}.pt"))
    val_set = CityscapesSegmentation(ensure_synthetic(), "val", transforms=EvalTransforms())
    scores = evaluate(model, val_set, num_classes=NUM_CLASSES, batch_size=4)
    assert scores["miou"] == pytest.approx(sidecar["val_miou"], abs=1e-3)


def test_at_the_demos_budget_pspnet_beats_its_twin_on_both_context_pairs() -> None:
    records = {name: json.loads((CHECKPOINTS / f"{name}.json").read_text()) for name in NAMES}
    for pair in (("bus", "train"), ("terrain", "vegetation")):
        psp = sum(records["pspnet_demo"]["iou"][c] for c in pair) / 2
        fcn = sum(records["fcn_demo"]["iou"][c] for c in pair) / 2
        assert psp > fcn + 0.2, (pair, psp, fcn)
    assert records["pspnet_demo"]["iterations"] == records["fcn_demo"]["iterations"] == 800
