"""The paper's ablations at course scale: the auxiliary-loss weight and the pyramid pooling.

Zhao et al. 2017 (Sec. 5.2) justify two design choices with ablations on ADE20K val with a
ResNet-50 (``pspnet_edu.experiments.paper``): the weight alpha of the auxiliary loss (Table
2) and the pyramid (Table 1: no PPM, one global bin, four levels, average or max pooling).
This module re-runs both with the tiny model over several seeds (a single run's difference
can be noise) and writes ``results.json`` (settings -> runs -> seed, mIoU, IoU per class,
with a provenance record) and a figure. It also scores the *context classes* of Synthcity
(``pspnet_edu.data.CONTEXT_CLASSES``), where global context should matter most.

Every run is an ordinary training run in its own folder ``OUT/SETTING/seedS``, so an
interrupted sweep resumes where it stopped and a finished run is read back, not trained again.

Deviation: the paper's numbers are for ADE20K (150 classes, ResNet-50, 150K iterations); ours
are for a tiny network trained for minutes on synthetic scenes. Compare trends, not values.

Taught in ``notebooks/09_ablations.ipynb``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch

from pspnet_edu.data import CLASS_NAMES, CONTEXT_CLASSES
from pspnet_edu.experiments.paper import PAPER_ROW_OF_VARIANT, PAPER_SOURCE, PAPER_TABLE1, PAPER_TABLE2, TRANSCRIPTION_NOTE
from pspnet_edu.provenance import provenance
from pspnet_edu.experiments.stats import context_miou, finite_mean
from pspnet_edu.files import check_writable, write_atomic
from pspnet_edu.training import CHECKPOINT_NAME, TrainConfig, train_from_config
from pspnet_edu.training.stop import listen_for_stop, stop_requested
from pspnet_edu.training.trained_on import data_source, portable_config

# The PPM ablation's variants as PSPNetConfig fields (paper Table 1's rows, and the control).
PPM_VARIANTS: dict[str, dict[str, Any]] = {
    "none": {"use_ppm": False},
    "B1-avg": {"use_ppm": True, "bins": (1,), "pooling": "avg"},
    "B1-max": {"use_ppm": True, "bins": (1,), "pooling": "max"},
    "B1236-avg": {"use_ppm": True, "bins": (1, 2, 3, 6), "pooling": "avg"},
    "B1236-max": {"use_ppm": True, "bins": (1, 2, 3, 6), "pooling": "max"},
    # The PPM's parameters without its context: each branch's 1x1 conv sees only its own pixel.
    "B1236-control": {"use_ppm": True, "bins": (1, 2, 3, 6), "pooling": "none"},
}
ALPHAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

Log = Callable[[str], None]


def with_model(config: TrainConfig, **fields: Any) -> TrainConfig:
    """``config`` with some of its model's fields changed (validated by PSPNetConfig)."""
    return dataclasses.replace(config, model=dataclasses.replace(config.model, **fields))


def run_settings(settings: dict[str, TrainConfig], seeds: Sequence[int] | dict[str, Sequence[int]], out: str | Path,
                 log: Log = print, processes: int = 1, snapshots: Sequence[int] = ()) -> dict[str, Any]:
    """Train every setting with each of its seeds, each run in ``out/SETTING/seedS``.

    A finished run is read back, an interrupted one resumed. ``processes > 1`` trains that
    many runs at a time, each in its own process with ``threads // processes`` torch threads
    and its printout in ``out/SETTING/seedS.log`` (on a small CPU two single-threaded runs get
    through more work than one run on two threads). Returns (and writes to
    ``out/results.json`` after every run) per setting and seed: mIoU, pixel accuracy,
    per-class IoU, the context classes' mean IoU and the training time, with a provenance
    record. ``snapshots``: iterations at which each run also saves its weights
    (:func:`~pspnet_edu.training.setup.train_from_config`). ``seeds`` may also name each
    setting's own seeds (a setting left out or given none is not trained). The runs go seed by
    seed (seed 0 of every setting first), so that a sweep stopped early compares the settings
    on the same seeds. Ctrl-C or SIGTERM stops the whole sweep, workers included: each run in
    training finishes its step and saves, none is started after it, and KeyboardInterrupt says
    how many finished (the same call resumes).
    """
    seeds_of = {name: list(seeds.get(name, ())) if isinstance(seeds, dict) else list(seeds) for name in settings}
    if not any(seeds_of.values()):
        raise ValueError("seeds must hold at least one seed")
    out, start = Path(out), time.time()
    check_writable(out, "--out")  # before any training, in one sentence (not a worker's "[Errno 20]")
    jobs = sorted(((name, dataclasses.replace(setting, seed=seed, out=str(out / name / f"seed{seed}")))
                   for name, setting in settings.items() for seed in seeds_of[name]), key=lambda job: job[1].seed)
    results: dict[str, Any] = {"settings": {}, "class_names": list(CLASS_NAMES), "context_classes": list(CONTEXT_CLASSES)}
    done: dict[tuple[str, int], dict[str, Any]] = {}

    def record(name: str, run: dict[str, Any]) -> None:
        done[name, run["seed"]] = run
        results["settings"] = {}  # rebuilt in the order of ``settings``, whichever run finished first
        for setting_name, setting in settings.items():
            runs = [done[setting_name, seed] for seed in seeds_of[setting_name] if (setting_name, seed) in done]
            if runs:
                results["settings"][setting_name] = {
                    "config": _describe(setting), "runs": runs, "miou_mean": finite_mean(r["miou"] for r in runs),
                    "context_miou_mean": finite_mean(r["context_miou"] for r in runs)}
        results["provenance"] = provenance(seconds=time.time() - start)
        write_atomic(out / "results.json", json.dumps(results, indent=1))

    if processes <= 1:
        for name, config in jobs:
            record(name, _run_one(config, name, log, snapshots))
        return results
    threads = max(1, torch.get_num_threads() // processes)
    stopped: list[str] = []  # what each stopped worker said: its run saved where it stopped, or not started
    others = set(multiprocessing.active_children())  # not the pool's (e.g. a notebook's own): a stop spares them
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                             initializer=listen_for_stop) as pool:
        futures = {pool.submit(_run_in_process, config, name, threads, snapshots): name for name, config in jobs}
        for name, config in jobs:
            log(f"--- {name}, seed {config.seed}: in a process of its own, {threads} thread(s), log {config.out}.log")
        with _stop_reaches_workers(futures, others) as asked:
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                try:
                    record(futures[future], future.result())
                except KeyboardInterrupt as stop:  # the worker saved the run, or did not start it
                    stopped.append(str(stop))
    if asked or stopped:
        saved = sum(not message.startswith("not started") for message in stopped)
        raise KeyboardInterrupt(f"{asked[0] if asked else 'stopped'}: {len(done)} run(s) finished, {saved} saved "
                                "where they stopped, the others not started; run the same command to resume")
    return results


@contextlib.contextmanager
def _stop_reaches_workers(futures: dict[Future, str], others: set) -> Iterator[list[str]]:
    """While the pool trains, Ctrl-C or SIGTERM to this process stops the sweep, not only this process.

    Each worker gets a SIGTERM (its run finishes the step, saves and stops:
    :class:`~pspnet_edu.training.stop.StopFlag`) and the runs not yet started are cancelled.
    Without this a SIGTERM killed the parent alone and its workers trained on, unseen. The
    processes in ``others`` (started before the pool) are left alone. Yields the signal's name
    once one came (empty until then). Outside the main thread it does nothing.
    """
    asked: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield asked
        return

    def stop(signum: int, frame: object) -> None:
        if not asked:
            asked.append(signal.Signals(signum).name)
        for future in futures:
            future.cancel()  # those not yet running
        for worker in set(multiprocessing.active_children()) - others:
            worker.terminate()  # SIGTERM: save and stop

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield asked
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_in_process(config: TrainConfig, name: str, threads: int, snapshots: Sequence[int] = ()) -> dict[str, Any]:
    """One run in a worker process, its printout in ``OUT.log`` (beside the run folder)."""
    if stop_requested():  # this worker was asked to stop: a queued run is not started
        raise KeyboardInterrupt(f"not started: {name}, seed {config.seed}")
    torch.set_num_threads(threads)
    Path(config.out).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{config.out}.log", "a") as file, contextlib.redirect_stdout(file):
        return _run_one(config, name, print, snapshots)


def _run_one(config: TrainConfig, name: str, log: Log, snapshots: Sequence[int] = ()) -> dict[str, Any]:
    resume = (Path(config.out) / CHECKPOINT_NAME).is_file()
    log(f"--- {name}, seed {config.seed}: {'resuming/reading' if resume else 'training'} {config.out}")
    result = train_from_config(config, resume=resume, snapshots=snapshots)
    if result.interrupted:
        raise KeyboardInterrupt(f"stopped during {name}, seed {config.seed}; run the same command to resume")
    final = result.final or {}
    iou = [v if isinstance(v, float) and v == v else None for v in final.get("iou", [])]
    return {"seed": config.seed, "miou": final.get("miou"), "pixel_acc": final.get("pixel_acc"),
            "mean_acc": final.get("mean_acc"), "iou": iou,
            "context_miou": context_miou(iou, CONTEXT_CLASSES) if iou else None,
            "seconds": round(result.seconds, 1)}


def _seed_list(seeds: int) -> list[int]:
    if not isinstance(seeds, int) or seeds <= 0:
        raise ValueError(f"seeds must be a positive number of seeds, got {seeds}")
    return list(range(seeds))


def _describe(config: TrainConfig) -> dict[str, Any]:
    """The setting's config as JSON values, without the per-run fields (seed, out) or a folder of this machine."""
    described = json.loads(json.dumps(dataclasses.asdict(config)))
    for per_run in ("seed", "out"):
        described.pop(per_run)
    return portable_config(described, data_source(config.data))


def ablate_alpha(base: TrainConfig, alphas: Sequence[float] = ALPHAS, seeds: int = 2,
                 out: str | Path = "runs/ablate_alpha", with_ppm: bool = False, log: Log = print,
                 processes: int = 1) -> dict[str, Any]:
    """Sweep the auxiliary-loss weight (paper Table 2); write results.json and alpha.png.

    As in the paper, the model is the dilated FCN without the PPM unless ``with_ppm``.
    """
    if not alphas or any(not 0 <= a < float("inf") for a in alphas):
        raise ValueError(f"alphas must be finite numbers >= 0, got {list(alphas)}")
    model_base = base if with_ppm else with_model(base, use_ppm=False)
    settings = {f"alpha={a:g}": dataclasses.replace(model_base, alpha=float(a)) for a in alphas}
    results = run_settings(settings, _seed_list(seeds), out, log, processes)
    results["paper"] = {"source": PAPER_SOURCE + " (Table 2, dilated FCN without PPM)", "note": TRANSCRIPTION_NOTE,
                        "miou_pixacc": {str(k): v for k, v in PAPER_TABLE2.items()}}
    write_atomic(Path(out) / "results.json", json.dumps(results, indent=1))
    from pspnet_edu.experiments.plots import plot_alpha  # matplotlib only when a figure is drawn (~0.5 s)

    plot_alpha(results, Path(out) / "alpha.png")
    return results


def ablate_ppm(base: TrainConfig, variants: Sequence[str] = tuple(PPM_VARIANTS), seeds: int = 2,
               out: str | Path = "runs/ablate_ppm", log: Log = print, processes: int = 1) -> dict[str, Any]:
    """No PPM vs B1 vs B1236, average vs max pooling, and the capacity control (paper Table 1)."""
    unknown = sorted(set(variants) - set(PPM_VARIANTS))
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(PPM_VARIANTS)}")
    settings = {v: with_model(base, **PPM_VARIANTS[v]) for v in variants}
    results = run_settings(settings, _seed_list(seeds), out, log, processes)
    results["paper"] = {"source": PAPER_SOURCE + " (Table 1)", "note": TRANSCRIPTION_NOTE, "miou_pixacc": PAPER_TABLE1,
                        "row_of_variant": PAPER_ROW_OF_VARIANT}
    write_atomic(Path(out) / "results.json", json.dumps(results, indent=1))
    from pspnet_edu.experiments.plots import plot_ppm  # matplotlib only when a figure is drawn (~0.5 s)

    plot_ppm(results, Path(out) / "ppm.png")
    return results
