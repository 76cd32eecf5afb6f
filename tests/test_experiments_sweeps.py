"""Tests for pspnet_edu.experiments.sweeps: the sweeps run, write JSON with provenance + PNG, resume."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pspnet_edu.data.synthetic import generate_synthetic
from pspnet_edu.experiments import DEMO_RECIPE, PPM_VARIANTS, ablate_alpha, ablate_ppm
from pspnet_edu.experiments.sweeps import run_settings, with_model
from pspnet_edu.pspnet import PSPNet

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    data = generate_synthetic(tmp_path_factory.mktemp("data") / "synth", train=4, val=2, size=(48, 96))
    return dataclasses.replace(DEMO_RECIPE, data=str(data), iters=2, batch_size=2, crop=(48, 96), eval_every=0)


def test_alpha_sweep_trains_the_fcn_per_seed_and_reads_finished_runs_back(base, tmp_path) -> None:
    out = tmp_path / "alpha"
    results = ablate_alpha(base, alphas=[0.0, 0.4], seeds=2, out=out)
    assert list(results["settings"]) == ["alpha=0", "alpha=0.4"]
    for setting in results["settings"].values():
        assert len(setting["runs"]) == 2 and setting["config"]["model"]["use_ppm"] is False
        assert all(0 <= run["miou"] <= 1 and len(run["iou"]) == 19 for run in setting["runs"])
    saved = json.loads((out / "results.json").read_text())
    assert saved["paper"]["miou_pixacc"]["0.4"] == [37.23, 78.01] and "ADE20K" in saved["paper"]["source"]
    assert {"command", "commit", "torch", "machine", "torch_threads", "wall_seconds"} <= set(saved["provenance"])
    assert (out / "alpha.png").stat().st_size > 5_000
    a, b = (torch.load(out / "alpha=0.4" / f"seed{s}" / "last.pt", weights_only=True)["model"] for s in (0, 1))
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the two seeds are different runs
    mtime = (out / "alpha=0" / "seed0" / "last.pt").stat().st_mtime_ns
    again = ablate_alpha(base, alphas=[0.0, 0.4], seeds=2, out=out)
    runs = results["settings"]["alpha=0.4"]["runs"]
    assert [r["miou"] for r in again["settings"]["alpha=0.4"]["runs"]] == [r["miou"] for r in runs]
    assert (out / "alpha=0" / "seed0" / "last.pt").stat().st_mtime_ns == mtime  # not trained again


def test_ppm_ablation_builds_each_variant_and_the_control_keeps_the_parameters(base, tmp_path) -> None:
    out = tmp_path / "ppm"
    results = ablate_ppm(base, variants=["none", "B1-max", "B1236-control"], seeds=1, out=out)
    assert results["settings"]["B1-max"]["config"]["model"]["bins"] == [1]
    saved = torch.load(out / "none" / "seed0" / "last.pt", weights_only=True)
    assert saved["config"]["model"]["use_ppm"] is False
    assert (out / "ppm.png").stat().st_size > 5_000
    assert results["paper"]["row_of_variant"]["B1236-avg"] == "B1236 + AVE + DR"
    count = {v: sum(p.numel() for p in PSPNet(with_model(base, **PPM_VARIANTS[v]).model).parameters())
             for v in ("none", "B1236-avg", "B1236-control")}
    assert count["B1236-control"] == count["B1236-avg"] > count["none"]


def test_runs_go_seed_by_seed_and_each_setting_may_have_its_own_seeds(base, tmp_path) -> None:
    """A sweep stopped early has compared its settings on the same seeds; a setting given no seed is not run."""
    settings = {v: with_model(base, **PPM_VARIANTS[v]) for v in ("none", "B1-avg", "B1-max")}
    lines: list[str] = []
    results = run_settings(settings, {"none": [0, 1], "B1-avg": [0, 1]}, tmp_path / "order", log=lines.append)
    started = [line.split(":")[0] for line in lines if "training" in line]
    assert started == ["--- none, seed 0", "--- B1-avg, seed 0", "--- none, seed 1", "--- B1-avg, seed 1"]
    assert list(results["settings"]) == ["none", "B1-avg"] and not (tmp_path / "order" / "B1-max").exists()
    # B1-max's seed 0 finishes before none's seed 1: the results still list the settings in their order
    results = run_settings(settings, {"none": [1], "B1-max": [0]}, tmp_path / "order", log=lines.append)
    assert list(results["settings"]) == ["none", "B1-max"]
    assert list(json.loads((tmp_path / "order" / "results.json").read_text())["settings"]) == ["none", "B1-max"]
    with pytest.raises(ValueError, match="at least one seed"):
        run_settings(settings, {"none": []}, tmp_path / "order")


def test_bad_arguments(base, tmp_path) -> None:
    with pytest.raises(ValueError, match="alphas"):
        ablate_alpha(base, alphas=[-0.1], out=tmp_path)
    with pytest.raises(ValueError, match="unknown variant"):
        ablate_ppm(base, variants=["B12"], out=tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        ablate_ppm(base, variants=["none"], seeds=0, out=tmp_path)


STOP_SCRIPT = """
import dataclasses, json, multiprocessing, sys, threading, time
from pspnet_edu.experiments import DEMO_RECIPE, PPM_VARIANTS
from pspnet_edu.experiments.sweeps import run_settings, with_model
base = dataclasses.replace(DEMO_RECIPE, data=sys.argv[1], iters=100_000, batch_size=2, crop=(48, 96), eval_every=0)
settings = {v: with_model(base, **PPM_VARIANTS[v]) for v in ("none", "B1-avg", "B1-max")}
def note_workers():  # for the test: the pool's worker processes, once both exist
    while len(multiprocessing.active_children()) < 2:
        time.sleep(0.05)
    print("WORKERS", json.dumps([p.pid for p in multiprocessing.active_children()]), flush=True)
threading.Thread(target=note_workers, daemon=True).start()
try:
    run_settings(settings, [0], sys.argv[2], processes=2)
except KeyboardInterrupt as stop:
    print("STOPPED", stop, flush=True)
"""


def test_sigterm_to_a_sweep_stops_its_workers_each_saving_its_run(base, tmp_path) -> None:
    """SIGTERM to the parent of a two-process sweep used to leave its workers training on, unseen."""
    out = tmp_path / "sweep"
    sweep = subprocess.Popen([sys.executable, "-c", STOP_SCRIPT, base.data, str(out)], stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"},
                             start_new_session=True)  # its own process group: killed below whatever happens
    try:
        line = ""
        while not line.startswith("WORKERS") and sweep.poll() is None:
            line = sweep.stdout.readline()  # the sweep's own lines first ("--- none, seed 0: ...")
        workers = json.loads(line.split(" ", 1)[1])
        deadline = time.time() + 120
        while sum((out / v / "seed0.log").exists() for v in ("none", "B1-avg")) < 2 and time.time() < deadline:
            time.sleep(0.1)  # both runs started (a stop before the training loop is kept for its first step)
        sweep.send_signal(signal.SIGTERM)
        printed, _ = sweep.communicate(timeout=120)
        stats = [Path(f"/proc/{pid}/stat") for pid in workers]  # read before the clean-up below
        alive = [stat for stat in stats if stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sweep.pid, signal.SIGKILL)  # before the fix, the workers outlived their parent
    assert sweep.returncode == 0 and "STOPPED SIGTERM: 0 run(s) finished, 2 saved where they stopped" in printed
    assert not alive  # the workers are gone (or zombies: state Z)
    for variant in ("none", "B1-avg"):
        saved = torch.load(out / variant / "seed0" / "last.pt", weights_only=False)
        assert 1 <= saved["iteration"] < 100_000  # saved where it stopped, not trained to the end
    assert not (out / "B1-max").exists()  # queued, never started
