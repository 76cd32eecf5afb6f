"""Tests for pspnet_edu.experiments.curves: curves along training, snapshots that change nothing, the figure."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from pspnet_edu.data.synthetic import generate_synthetic
from pspnet_edu.experiments.curves import CURVE_RECIPE, learning_curves, learnt_counts
from pspnet_edu.experiments.report import curves_table
from pspnet_edu.training import build_model, load_snapshot, train_from_config

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    data = generate_synthetic(tmp_path_factory.mktemp("data") / "synth", train=4, val=2, size=(48, 96))
    return dataclasses.replace(CURVE_RECIPE, data=str(data), batch_size=2, crop=(48, 96), eval_every=2)


def test_snapshots_keep_the_weights_of_those_steps_and_change_nothing(base, tmp_path) -> None:
    plain = train_from_config(dataclasses.replace(base, iters=4, out=str(tmp_path / "plain")))
    config = dataclasses.replace(base, iters=4, out=str(tmp_path / "snap"))
    kept = train_from_config(config, snapshots=(2, 4))
    assert sorted(p.name for p in (tmp_path / "snap").glob("step*.pt")) == ["step2.pt", "step4.pt"]
    final, fresh = kept.model.state_dict(), build_model(config).state_dict()
    assert all(torch.equal(final[k], v) for k, v in plain.model.state_dict().items())  # bit-identical run
    at4, at2, at0 = (load_snapshot(config, s).state_dict() for s in (4, 2, 0))
    assert all(torch.equal(final[k], at4[k]) for k in final)
    assert all(torch.equal(fresh[k], at0[k]) for k in fresh)  # step 0: the seed's initial weights
    assert any(not torch.equal(at2[k], at4[k]) for k in at2 if at2[k].is_floating_point())
    with pytest.raises(FileNotFoundError, match="no snapshot"):
        load_snapshot(config, 3)


def test_learning_curves_write_the_evaluations_and_the_effective_field(base, tmp_path) -> None:
    out = tmp_path / "curves"
    results = learning_curves(base, variants=("none", "B1-avg"), seeds=2, steps=(2, 4), out=out)
    saved = json.loads((out / "results.json").read_text())
    assert saved["curves"] == results["curves"] and set(saved["curves"]) == {"none", "B1-avg"}
    run = saved["curves"]["none"][1]
    history = json.loads((out / "none" / "seed1" / "history.json").read_text())
    assert run["seed"] == 1 and run["iteration"] == [2, 4] == [row["iteration"] for row in history["val"]]
    assert run["miou"] == [row["miou"] for row in history["val"]]
    bus, train = history["class_names"].index("bus"), history["class_names"].index("train")
    last = history["val"][-1]["iou"]
    assert run["pairs"]["bus/train"][-1] == pytest.approx((last[bus] + last[train]) / 2)
    erf = run["erf"]
    assert erf["iteration"] == [0, 2, 4] and all(0 < r50 <= r for r, r50 in zip(erf["radius"], erf["radius50"]))
    assert all(0 < a50 < a95 <= 1 for a50, a95 in zip(erf["area50"], erf["area95"]))
    assert all(0 <= share <= 1 for share in erf["sky"]) and 0 < saved["erf"]["scene_sky_share"] < 1
    assert saved["erf"]["node"] == "backbone.layer4" and saved["erf"]["input"] == [48, 96]
    assert {"command", "commit", "machine"} <= set(saved["provenance"])
    assert (out / "curves.png").stat().st_size > 5_000
    counts = learnt_counts(saved, "bus/train", threshold=0.0)
    assert counts == {"none": [2, 2], "B1-avg": [2, 2]}
    assert learnt_counts(saved, "bus/train", threshold=1.01) == {"none": [0, 0], "B1-avg": [0, 0]}
    table = curves_table(saved)
    assert "| `none` | bus/train: seeds that learnt it | - | 2 of 2 |" not in table  # 0.6 threshold, 4 steps
    assert table.count("share of the gradient from the sky") == 2 and "step 0 | step 2 | step 4" in table
    one_seed = curves_table({**saved, "curves": {"none": saved["curves"]["none"][:1]}})  # a sweep still growing
    radius = saved["curves"]["none"][0]["erf"]["radius"][0]
    assert "±" not in one_seed and f"of the gradient (px) | {radius:.0f} |" in one_seed


def test_reuse_keeps_the_earlier_runs_and_trains_only_the_missing_seeds(base, tmp_path) -> None:
    """A sweep longer than one sitting: the second sitting has only the first one's results file."""
    whole = learning_curves(base, variants=("none", "B1-avg"), seeds=2, steps=(2, 4), out=tmp_path / "whole")
    first = learning_curves(base, variants=("none",), seeds=2, steps=(2, 4), out=tmp_path / "first")
    kept = tmp_path / "kept.json"
    kept.write_text((tmp_path / "first" / "results.json").read_text())
    lines: list[str] = []
    second = learning_curves(base, variants=("none", "B1-avg"), seeds=2, steps=(2, 4), out=tmp_path / "second",
                             reuse=kept, log=lines.append)
    assert not (tmp_path / "second" / "none").exists()  # nothing of `none` trained again
    assert sum("training" in line for line in lines) == 2 and any("seeds [0, 1] kept" in line for line in lines)
    assert second["curves"] == whole["curves"]  # same seeds, same machine: the same numbers
    assert second["settings"]["none"] == first["settings"]["none"]
    assert [r["seed"] for r in second["settings"]["B1-avg"]["runs"]] == [0, 1]
    assert second["earlier_provenance"] == [first["provenance"]]
    # a third sitting adds seed 2 of `none` only; the earlier provenances pile up
    third = learning_curves(base, variants=("none",), seeds=3, steps=(2, 4), out=tmp_path / "third",
                            reuse=tmp_path / "second" / "results.json")
    assert [r["seed"] for r in third["curves"]["none"]] == [0, 1, 2] and set(third["curves"]) == {"none", "B1-avg"}
    assert len(third["earlier_provenance"]) == 2
    with pytest.raises(ValueError, match="other steps; give --steps 2 4"):
        learning_curves(base, variants=("none",), seeds=3, steps=(2, 6), out=tmp_path / "x", reuse=kept)
    with pytest.raises(ValueError, match=r"none runs were trained with other options \(that file -> this run: lr: 0\.\d+ -> 0\.5\)"):
        learning_curves(dataclasses.replace(base, lr=0.5), variants=("none",), seeds=3, steps=(2, 4),
                        out=tmp_path / "x", reuse=kept)
    edited = json.loads(kept.read_text())  # a setting not asked for this time is checked too: it stays in the file
    edited["settings"]["none"]["config"]["lr"] = 0.5
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    with pytest.raises(ValueError, match="none runs were trained with other options"):
        learning_curves(base, variants=("B1-avg",), seeds=1, steps=(2, 4), out=tmp_path / "x", reuse=tmp_path / "edited.json")
    with pytest.raises(ValueError, match="rewrites after every run; copy it aside"):
        learning_curves(base, variants=("none",), seeds=3, steps=(2, 4), out=tmp_path / "first",
                        reuse=tmp_path / "first" / "results.json")
    with pytest.raises(ValueError, match="cannot read --reuse"):
        learning_curves(base, out=tmp_path / "x", steps=(2, 4), reuse=tmp_path / "missing.json")


def test_bad_arguments(base, tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        learning_curves(base, variants=("B7",), out=tmp_path)
    with pytest.raises(ValueError, match="increasing"):
        learning_curves(base, steps=(4, 2), out=tmp_path)
    with pytest.raises(ValueError, match="eval_every"):
        learning_curves(dataclasses.replace(base, eval_every=0), out=tmp_path)
