"""Learning curves: when each network reads each context pair, beside the FCN's effective receptive field.

The PPM ablation (:mod:`pspnet_edu.experiments.sweeps`) scores each network once, at the end.
Here the same settings (by default no PPM, the four-level pyramid and its capacity control) are
trained longer with several seeds, evaluated every ``eval_every`` steps, and their weights kept
at a few steps (``snapshots``), so that one can see *when* each network learns each context pair.
For the networks at those steps the effective receptive field of the backbone's last stage is
measured (Luo et al. 2016; :func:`pspnet_edu.receptive_field.effective_receptive_field`): the
radius around a central unit that holds 90 % of its gradient, over a few validation scenes.
The pyramid hands every pixel the whole image's average from the first step (Zhao et al. 2017,
Sec. 3.2); a network without it must learn to read distant pixels through its backbone.

``learning_curves`` writes ``OUT/results.json`` (the sweep's final scores as
:func:`~pspnet_edu.experiments.sweeps.run_settings` writes them, plus ``curves``: per setting
and seed, the evaluations along training and the effective field at each snapshot) and
``OUT/curves.png``. Taught in ``notebooks/09_ablations.ipynb``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pspnet_edu.data import CONTEXT_CLASSES, CONTEXT_PAIRS, THIN_CLASSES
from pspnet_edu.data.labels import CLASS_NAMES
from pspnet_edu.experiments.demo import DEMO_RECIPE
from pspnet_edu.experiments.stats import context_miou, finite_mean
from pspnet_edu.experiments.sweeps import PPM_VARIANTS, Log, _describe, _seed_list, run_settings, with_model
from pspnet_edu.files import strict_json, write_atomic
from pspnet_edu.provenance import provenance
from pspnet_edu.receptive_field import effective_receptive_field
from pspnet_edu.training import TrainConfig, build_datasets, load_snapshot
from pspnet_edu.training.config import dict_differences

CURVE_VARIANTS = ("none", "B1236-avg", "B1236-control")
CURVE_STEPS = (200, 400, 800, 1600, 3200)  # snapshots for the effective field; the last is the run's length
ERF_NODE = "layer4"  # the backbone's last stage: what the head (and the PPM) read
ERF_SCENES = 8  # validation scenes the gradient is summed over (Luo et al. average over images)
ERF_MASS = 0.9  # the radius holding this share of the gradient
LEARNT = 0.6  # a pair counts as learnt by a run whose pair IoU reaches this
# The demo's recipe, evaluated every 200 steps (each evaluation: 60 forward passes, ~3 % of the run).
CURVE_RECIPE = dataclasses.replace(DEMO_RECIPE, eval_every=200)


def learning_curves(base: TrainConfig = CURVE_RECIPE, variants: Sequence[str] = CURVE_VARIANTS, seeds: int = 5,
                    steps: Sequence[int] = CURVE_STEPS, out: str | Path = "runs/curves",
                    log: Log = print, processes: int = 1, reuse: str | Path | None = None) -> dict[str, Any]:
    """Train ``variants`` x ``seeds`` for ``max(steps)`` iterations; curves and effective fields.

    Every run is evaluated every ``base.eval_every`` steps and saves its weights after each of
    ``steps`` (and the initial weights are rebuilt from the seed), so an interrupted sweep
    resumes and a finished one is read back. ``reuse``: an earlier results file of this
    function (e.g. ``results/curves.json``, whose snapshots are gone): its runs of the same
    settings are kept as they are and only the seeds it lacks are trained, so a sweep longer
    than one sitting grows over several; the merged results keep the earlier provenance.
    Returns (and writes) the results.
    """
    unknown = sorted(set(variants) - set(PPM_VARIANTS))
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(PPM_VARIANTS)}")
    if not steps or any(not isinstance(s, int) or s <= 0 for s in steps) or list(steps) != sorted(set(steps)):
        raise ValueError(f"steps must be increasing positive iterations, e.g. 200 400 800; got {list(steps)}")
    if base.eval_every <= 0:
        raise ValueError(f"learning curves need evaluations along training: eval_every > 0, got {base.eval_every}")
    start = time.time()
    config = dataclasses.replace(base, iters=steps[-1])
    settings = {v: with_model(config, **PPM_VARIANTS[v]) for v in variants}
    seed_list = _seed_list(seeds)
    _, val_set = build_datasets(config)
    if val_set is None:
        raise ValueError("learning curves need a validation split; drop --val-split none")
    items = [val_set[i] for i in range(min(ERF_SCENES, len(val_set)))]
    scenes, masks = torch.stack([image for image, _ in items]).double(), torch.stack([mask for _, mask in items])
    erf_setup = {"node": f"backbone.{ERF_NODE}", "scenes": len(scenes), "mass": ERF_MASS,
                 "input": list(scenes.shape[-2:]), "unit": "centre unit; radius in input pixels",
                 "scene_sky_share": round(float((masks == CLASS_NAMES.index("sky")).double().mean()), 4)}
    if reuse is not None and Path(reuse).resolve() == (Path(out) / "results.json").resolve():
        raise ValueError(f"--reuse {reuse} is the file this run rewrites after every run; copy it aside "
                         f"(e.g. to results/curves.json) and reuse the copy")
    earlier = _earlier_results(reuse, config, steps, erf_setup) if reuse is not None else None
    kept = {name: sorted(run["seed"] for run in runs) for name, runs in (earlier or {"curves": {}})["curves"].items()}
    to_train = {name: [seed for seed in seed_list if seed not in kept.get(name, ())] for name in settings}
    for name, seeds_kept in kept.items():
        log(f"--- {name}: seeds {seeds_kept} kept from {reuse}")
    if any(to_train.values()):
        results = run_settings(settings, to_train, out, log, processes, snapshots=steps)
    else:
        results = {"settings": {}, "class_names": list(CLASS_NAMES), "context_classes": list(CONTEXT_CLASSES)}
    results["curves"] = {}
    for name, setting in settings.items():
        runs = []
        for seed in to_train[name]:
            run = dataclasses.replace(setting, seed=seed, out=str(Path(out) / name / f"seed{seed}"))
            log(f"--- {name}, seed {seed}: effective receptive field at steps 0, {', '.join(map(str, steps))}")
            runs.append({"seed": seed, **evaluations(run), "erf": field_along_training(run, (0, *steps), scenes, masks)})
        if runs:
            results["curves"][name] = runs
    if earlier is not None:
        results = _merged(earlier, results)
    results["erf"] = erf_setup
    results["learnt_threshold"] = LEARNT
    results["provenance"] = provenance(seconds=time.time() - start)
    if earlier is not None:
        results["earlier_provenance"] = [*earlier.get("earlier_provenance", []), earlier["provenance"]]
    write_atomic(Path(out) / "results.json", strict_json(results, indent=1))
    from pspnet_edu.experiments.plots import plot_curves  # matplotlib only when a figure is drawn (~0.5 s)

    plot_curves(results, Path(out) / "curves.png")
    return results


def _earlier_results(path: str | Path, config: TrainConfig, steps: Sequence[int],
                     erf_setup: dict[str, Any]) -> dict[str, Any]:
    """The earlier results file to reuse, refused in one sentence when it was made another way.

    Every setting it holds is checked, also one not asked for this time (it is kept in the
    merged file): the same options (``config`` with that variant's model), steps and measure.
    """
    try:
        earlier = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read --reuse {path} ({error}); give a results.json of `pspnet-edu ablate curves`")
    if not isinstance(earlier, dict) or not {"settings", "curves", "erf", "provenance"} <= set(earlier):
        raise ValueError(f"--reuse {path} is not a results file of `pspnet-edu ablate curves`")
    for key, value in erf_setup.items():
        if key != "scene_sky_share" and earlier["erf"].get(key) != value:
            raise ValueError(f"--reuse {path} measured the effective field with {key} {earlier['erf'].get(key)}, "
                             f"this run with {value}; run without --reuse")
    for name, runs in earlier["curves"].items():
        if name not in PPM_VARIANTS or name not in earlier["settings"]:
            raise ValueError(f"--reuse {path} holds a setting {name!r} that is not a variant of `ablate curves`")
        if any(run["erf"]["iteration"] != [0, *steps] for run in runs):
            raise ValueError(f"--reuse {path}: its {name} runs kept other steps; give --steps "
                             f"{' '.join(map(str, runs[0]['erf']['iteration'][1:]))}")
        asked = _describe(with_model(config, **PPM_VARIANTS[name]))
        differences = dict_differences(earlier["settings"][name]["config"], asked)
        if differences:
            raise ValueError(f"--reuse {path}: its {name} runs were trained with other options (that file -> "
                             f"this run: {'; '.join(differences)}); give the same options or run without --reuse")
    return earlier


def _merged(earlier: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Both results' runs, per setting ordered by seed (the new run wins a seed both hold)."""
    merged = {**earlier, "settings": {}, "curves": {}}
    for name in [*earlier["curves"], *(n for n in new["curves"] if n not in earlier["curves"])]:
        new_seeds = {run["seed"] for run in new["curves"].get(name, ())}
        curves = [r for r in earlier["curves"].get(name, ()) if r["seed"] not in new_seeds] + new["curves"].get(name, [])
        old_setting = earlier["settings"].get(name, {"runs": []})
        setting = new["settings"].get(name, old_setting)
        runs = [r for r in old_setting["runs"] if r["seed"] not in new_seeds] + new["settings"].get(name, {}).get("runs", [])
        runs.sort(key=lambda r: r["seed"])
        merged["curves"][name] = sorted(curves, key=lambda r: r["seed"])
        merged["settings"][name] = {**setting, "runs": runs, "miou_mean": finite_mean(r["miou"] for r in runs),
                                    "context_miou_mean": finite_mean(r["context_miou"] for r in runs)}
    return merged


def evaluations(run: TrainConfig) -> dict[str, list[Any]]:
    """The run's validation rows as series: iteration, mIoU, each context pair's IoU, the thin classes' IoU."""
    history = json.loads((Path(run.out) / "history.json").read_text())
    rows = history["val"]
    thin = [CLASS_NAMES.index(c) for c in THIN_CLASSES]
    pairs = {"/".join(pair): [CLASS_NAMES.index(c) for c in pair] for pair in CONTEXT_PAIRS}
    return {"iteration": [row["iteration"] for row in rows],
            "miou": [row["miou"] for row in rows],
            "pairs": {label: [context_miou(_finite(row["iou"]), ids) for row in rows] for label, ids in pairs.items()},
            "thin": [context_miou(_finite(row["iou"]), thin) for row in rows]}


def field_along_training(run: TrainConfig, steps: Sequence[int], scenes: torch.Tensor,
                         masks: torch.Tensor) -> dict[str, list[Any]]:
    """The effective receptive field of ``backbone.layer4``'s centre unit at each snapshot of the run.

    ``radius``: pixels around the unit holding ``ERF_MASS`` of the gradient (summed over
    ``scenes``), ``radius50`` half of it; ``area50`` / ``area95``: the share of the image (the
    unit's theoretical field, clipped to it) that holds half / 95 % of the gradient; ``sky``: the
    share of each scene's gradient that comes from its sky pixels (``masks``), averaged over the
    scenes: how much the unit reads the region that holds both context cues.
    """
    shape = tuple(scenes.shape[1:])
    sky = masks == CLASS_NAMES.index("sky")
    series: dict[str, list[Any]] = {"iteration": list(steps), "radius": [], "radius50": [], "area50": [],
                                    "area95": [], "sky": []}
    for step in steps:
        backbone = load_snapshot(run, step).backbone
        erf = effective_receptive_field(backbone, shape, ERF_NODE, inputs=scenes, mass=0.95)
        series["radius"].append(round(erf.radius(ERF_MASS), 2))
        series["radius50"].append(round(erf.radius(0.5), 2))
        series["area95"].append(round(erf.effective_area_ratio, 4))
        series["area50"].append(round(effective_receptive_field(backbone, shape, ERF_NODE, inputs=scenes, mass=0.5)
                                      .effective_area_ratio, 4))
        shares = [float(g[s].sum() / g.sum()) for g, s in
                  ((effective_receptive_field(backbone, shape, ERF_NODE, inputs=scene[None]).gradient, s)
                   for scene, s in zip(scenes, sky))]
        series["sky"].append(round(sum(shares) / len(shares), 4))
    return series


def learnt_counts(results: dict[str, Any], pair: str, threshold: float | None = None) -> dict[str, list[int]]:
    """Per setting, at each evaluation: how many seeds have the pair's IoU at or above the threshold."""
    threshold = results["learnt_threshold"] if threshold is None else threshold
    return {name: [sum(r["pairs"][pair][i] >= threshold for r in runs) for i in range(len(runs[0]["iteration"]))]
            for name, runs in results["curves"].items()}


def _finite(iou: Sequence[float | None]) -> list[float | None]:
    return [v if isinstance(v, float) and v == v else None for v in iou]
