"""Tests for pspnet_edu.ablate: the sweeps run, write JSON + PNG with the paper's values, resume."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pspnet_edu.ablate import PAPER_TABLE1, PAPER_TABLE2, PPM_VARIANTS, ablate_alpha, ablate_ppm, context_miou
from pspnet_edu.data.synthetic import generate_synthetic


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    data = generate_synthetic(tmp_path_factory.mktemp("data") / "synth", train=4, val=2, size=(48, 96))
    return {"data": str(data), "iters": 2, "batch_size": 2, "crop": (48, 96)}


def test_paper_tables_match_the_reference() -> None:
    # /work/shared/REFERENCE.md, Tables 1 and 2 (ADE20K val, ResNet-50)
    assert PAPER_TABLE1["none"] == (37.23, 78.01) and PAPER_TABLE1["B1236-avg"] == (41.07, 79.97)
    assert PAPER_TABLE2[0.0] == (35.82, 77.07) and PAPER_TABLE2[0.4] == (37.23, 78.01)
    assert max(PAPER_TABLE2, key=lambda a: PAPER_TABLE2[a][0]) == 0.4
    assert set(PPM_VARIANTS) == set(PAPER_TABLE1)
    assert PPM_VARIANTS["none"] == {"use_ppm": False}


def test_context_miou_skips_absent_classes() -> None:
    assert context_miou([0.2, None, 0.4], [0, 1, 2]) == pytest.approx(0.3)
    assert math.isnan(context_miou([None, float("nan")], [0, 1]))


def test_alpha_sweep(base, tmp_path) -> None:
    out = tmp_path / "alpha"
    results = ablate_alpha(alphas=[0.0, 0.4], seeds=2, out=out, base=base)
    assert list(results["settings"]) == ["alpha=0", "alpha=0.4"]
    for setting in results["settings"].values():
        assert len(setting["runs"]) == 2 and setting["changes"]["overrides"] == {"use_ppm": False}
        assert all(0 <= run["miou"] <= 1 and len(run["iou"]) == 19 for run in setting["runs"])
    saved = json.loads((out / "results.json").read_text())
    assert saved["paper"]["miou_pixacc"]["0.4"] == [37.23, 78.01] and "ADE20K" in saved["paper"]["source"]
    assert (out / "alpha.png").stat().st_size > 5_000
    # the two seeds are different runs
    runs = results["settings"]["alpha=0.4"]["runs"]
    a, b = (torch.load(out / "alpha=0.4" / f"seed{s}" / "last.pt", weights_only=True)["model"] for s in (0, 1))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    # a second call reads the finished runs back instead of training again
    mtime = (out / "alpha=0" / "seed0" / "last.pt").stat().st_mtime_ns
    again = ablate_alpha(alphas=[0.0, 0.4], seeds=2, out=out, base=base)
    assert [r["miou"] for r in again["settings"]["alpha=0.4"]["runs"]] == [r["miou"] for r in runs]
    assert (out / "alpha=0" / "seed0" / "last.pt").stat().st_mtime_ns == mtime


def test_ppm_ablation(base, tmp_path) -> None:
    out = tmp_path / "ppm"
    results = ablate_ppm(variants=["none", "B1-max"], seeds=1, out=out, base=base)
    assert results["settings"]["B1-max"]["changes"]["overrides"] == {"bins": (1,), "pooling": "max"}
    checkpoint = torch.load(out / "none" / "seed0" / "last.pt", weights_only=True)
    assert checkpoint["model_config"]["use_ppm"] is False
    assert torch.load(out / "B1-max" / "seed0" / "last.pt", weights_only=True)["model_config"]["pooling"] == "max"
    assert (out / "ppm.png").stat().st_size > 5_000
    assert results["settings"]["none"]["context_miou_mean"] is not None


def test_bad_arguments(base, tmp_path) -> None:
    with pytest.raises(ValueError, match="alphas"):
        ablate_alpha(alphas=[-0.1], out=tmp_path, base=base)
    with pytest.raises(ValueError, match="unknown variant"):
        ablate_ppm(variants=["B12"], out=tmp_path, base=base)
    with pytest.raises(ValueError, match="seeds"):
        ablate_ppm(variants=["none"], seeds=0, out=tmp_path, base=base)
