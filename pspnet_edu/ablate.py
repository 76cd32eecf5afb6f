"""The paper's ablations at course scale: the auxiliary-loss weight and the pyramid pooling.

Zhao et al. 2017 (Sec. 4.2) justify two design choices with ablations on ADE20K val with a
ResNet-50:

- **Table 2**, the weight alpha of the auxiliary loss on the dilated-FCN baseline: no
  auxiliary loss 35.82 mIoU, alpha = 0.4 best at 37.23;
- **Table 1**, the pyramid: no PPM (the baseline) 37.23, one global bin (B1) ~40, four levels
  (B1236) ~41, average pooling better than max pooling.

This module re-runs both on the course's data with the tiny model, over several seeds (a
single run's difference can be noise), and writes ``results.json`` and a PNG that puts the
measured numbers beside the paper's. It also scores the *context classes* of the synthetic
set (``pspnet_edu.data.CONTEXT_CLASSES``): pairs of classes that look the same locally and
that only global context separates, where the PPM should matter most. ``run_demo`` is the
smallest such comparison (PSPNet against the no-PPM baseline), the course's ``make demo``.

Every run is an ordinary training run in its own folder, so an interrupted ablation resumes
where it stopped, and a finished run is not trained again.

Deviation: the paper's numbers are for ADE20K (150 classes, ResNet-50, 150K iterations); ours
are for a tiny network trained for minutes on synthetic scenes. Compare trends, not values.

Taught in ``notebooks/09_ablations.ipynb``; ``run_demo`` is `make demo` (README.md).
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pspnet_edu.train import write_atomic

# Zhao et al. 2017, Table 1 (ADE20K val, ResNet-50, single scale): (mIoU %, pixel accuracy %).
# Every row includes data augmentation and the auxiliary loss ("DA + AL"); "DR" rows omitted.
PAPER_TABLE1: dict[str, tuple[float, float]] = {
    "none": (37.23, 78.01),  # dilated FCN baseline
    "B1-max": (39.94, 79.46),
    "B1-avg": (40.07, 79.52),
    "B1236-max": (40.18, 79.45),
    "B1236-avg": (41.07, 79.97),
}
# Zhao et al. 2017, Table 2 (ADE20K val, ResNet-50 dilated FCN *without* PPM): alpha -> (mIoU %, pixAcc %).
PAPER_TABLE2: dict[float, tuple[float, float]] = {
    0.0: (35.82, 77.07),
    0.3: (37.01, 77.87),
    0.4: (37.23, 78.01),
    0.6: (37.09, 77.84),
    0.9: (36.99, 77.87),
}
PAPER_SOURCE = "Zhao et al. 2017 (PSPNet), ADE20K val, ResNet-50"
TRANSCRIPTION_NOTE = ("Baseline, B1-avg, no-aux and alpha=0.4 rows are confirmed by the paper's prose; "
                      "the other rows come from one transcription of the tables.")

# The PPM ablation's variants as PSPNetConfig overrides (paper Table 1's rows).
PPM_VARIANTS: dict[str, dict[str, Any]] = {
    "none": {"use_ppm": False},
    "B1-avg": {"bins": (1,), "pooling": "avg"},
    "B1-max": {"bins": (1,), "pooling": "max"},
    "B1236-avg": {"bins": (1, 2, 3, 6), "pooling": "avg"},
    "B1236-max": {"bins": (1, 2, 3, 6), "pooling": "max"},
}


def _finite_or_none(values: Sequence[float]) -> list[float | None]:
    return [v if isinstance(v, float) and math.isfinite(v) else None for v in values]


def context_miou(iou: Sequence[float | None], classes: Sequence[int]) -> float:
    """Mean IoU over ``classes`` (the context classes), ignoring those absent (NaN or None).

    >>> context_miou([0.5, float("nan"), 0.9, 0.1], [0, 1, 2])
    0.7
    """
    values = [iou[c] for c in classes if iou[c] is not None and not math.isnan(iou[c])]
    return sum(values) / len(values) if values else float("nan")


def run_settings(settings: dict[str, dict[str, Any]], seeds: int, out: str | Path, base: dict[str, Any],
                 log: Any = print) -> dict[str, Any]:
    """Train every setting with seeds ``0..seeds-1``; each run in ``out/SETTING/seedS``.

    ``settings`` maps a name to TrainConfig fields (e.g. ``{"alpha": 0.2}`` or
    ``{"overrides": {"use_ppm": False}}``) applied over ``base``. A finished run is read
    back, an interrupted one resumed. Returns (and writes to ``out/results.json``) per setting
    and seed: mIoU, pixel accuracy, per-class IoU and the context classes' mean IoU.
    """
    from pspnet_edu.data.labels import CLASS_NAMES
    from pspnet_edu.data.synthetic import CONTEXT_CLASSES
    from pspnet_edu.train import CHECKPOINT_NAME, TrainConfig, train

    if seeds <= 0:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    out = Path(out)
    results: dict[str, Any] = {"settings": {}, "base": {k: v for k, v in base.items()},
                               "class_names": list(CLASS_NAMES), "context_classes": list(CONTEXT_CLASSES)}
    for name, changes in settings.items():
        runs = []
        for seed in range(seeds):
            fields = {**base, **changes, "seed": seed, "out": str(out / name / f"seed{seed}")}
            config = TrainConfig(**fields)
            resume = (Path(config.out) / CHECKPOINT_NAME).is_file()
            log(f"--- {name}, seed {seed}: {'resuming/reading' if resume else 'training'} {config.out}")
            start = time.perf_counter()
            result = train(config, resume=resume)
            if result.interrupted:
                raise KeyboardInterrupt(f"stopped during {name}, seed {seed}; run the same command to resume")
            final = result.final or {}
            iou = _finite_or_none(final.get("iou", []))
            runs.append({"seed": seed, "miou": final.get("miou"), "pixel_acc": final.get("pixel_acc"),
                         "mean_acc": final.get("mean_acc"), "iou": iou,
                         "context_miou": context_miou(iou, CONTEXT_CLASSES) if iou else None,
                         "seconds": round(time.perf_counter() - start, 1)})
        results["settings"][name] = {"changes": changes, "runs": runs,
                                     "miou_mean": _mean(r["miou"] for r in runs),
                                     "context_miou_mean": _mean(r["context_miou"] for r in runs)}
        write_atomic(out / "results.json", json.dumps(results, indent=1, default=_json_default).encode())
    return results


def _mean(values: Any) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else None


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _save_figure(figure: Any, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())


def ablate_alpha(alphas: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), seeds: int = 2,
                 out: str | Path = "runs/ablate_alpha", base: dict[str, Any] | None = None,
                 with_ppm: bool = False) -> dict[str, Any]:
    """Sweep the auxiliary-loss weight (paper Table 2); write results.json and alpha.png.

    As in the paper, the model is the dilated FCN without the PPM unless ``with_ppm``.
    """
    if any(a < 0 for a in alphas):
        raise ValueError(f"alphas must be >= 0, got {list(alphas)}")
    base = dict(base or {})
    overrides = {**base.pop("overrides", {}), **({} if with_ppm else {"use_ppm": False})}
    settings = {f"alpha={a:g}": {"alpha": float(a), "overrides": overrides} for a in alphas}
    results = run_settings(settings, seeds, out, base)
    results["paper"] = {"source": PAPER_SOURCE + " (Table 2, dilated FCN without PPM)",
                        "note": TRANSCRIPTION_NOTE, "miou_pixacc": {str(k): v for k, v in PAPER_TABLE2.items()}}
    write_atomic(Path(out) / "results.json", json.dumps(results, indent=1, default=_json_default).encode())
    plot_alpha(results, Path(out) / "alpha.png")
    return results


def ablate_ppm(variants: Sequence[str] = tuple(PPM_VARIANTS), seeds: int = 2, out: str | Path = "runs/ablate_ppm",
               base: dict[str, Any] | None = None) -> dict[str, Any]:
    """No PPM vs B1 vs B1236, average vs max pooling (paper Table 1); write results.json and ppm.png."""
    unknown = sorted(set(variants) - set(PPM_VARIANTS))
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(PPM_VARIANTS)}")
    base = dict(base or {})
    base_overrides = base.pop("overrides", {})
    settings = {v: {"overrides": {**base_overrides, **PPM_VARIANTS[v]}} for v in variants}
    results = run_settings(settings, seeds, out, base)
    results["paper"] = {"source": PAPER_SOURCE + " (Table 1)", "note": TRANSCRIPTION_NOTE,
                        "miou_pixacc": PAPER_TABLE1}
    write_atomic(Path(out) / "results.json", json.dumps(results, indent=1, default=_json_default).encode())
    plot_ppm(results, Path(out) / "ppm.png")
    return results


def plot_alpha(results: dict[str, Any], path: Path) -> None:
    """mIoU against alpha: every seed, their mean, and the paper's Table 2 on its own panel."""
    # A bare Figure, not pyplot: no global backend switch, so a notebook calling this keeps
    # its inline figures.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.6))
    ours, paper = figure.subplots(1, 2)
    alphas, means, context = [], [], []
    for setting in results["settings"].values():
        alpha = setting["changes"]["alpha"]
        for run in setting["runs"]:
            ours.plot(alpha, run["miou"], "o", color="tab:blue", alpha=0.4, markersize=4)
        alphas.append(alpha)
        means.append(setting["miou_mean"])
        context.append(setting["context_miou_mean"])
    ours.plot(alphas, means, "-", color="tab:blue", label="mIoU (mean over seeds)")
    ours.plot(alphas, context, "--", color="tab:orange", label="context classes IoU")
    ours.set(xlabel="alpha (auxiliary loss weight)", ylabel="IoU", title="this course: tiny model, synthetic data")
    ours.legend(fontsize=8)
    table = PAPER_TABLE2
    paper.plot(list(table), [v[0] for v in table.values()], "s-", color="tab:green")
    paper.set(xlabel="alpha", ylabel="mIoU (%)", title="paper Table 2: ADE20K val, ResNet-50")
    figure.text(0.5, -0.02, TRANSCRIPTION_NOTE, ha="center", fontsize=7)
    _save_figure(figure, path)


def plot_ppm(results: dict[str, Any], path: Path) -> None:
    """Bars per PPM variant: our mIoU and context-class IoU, beside the paper's Table 1."""
    # A bare Figure, not pyplot: no global backend switch, so a notebook calling this keeps
    # its inline figures.
    from matplotlib.figure import Figure

    names = list(results["settings"])
    figure = Figure(figsize=(11, 3.8))
    ours, paper = figure.subplots(1, 2)
    x = range(len(names))
    miou = [results["settings"][n]["miou_mean"] or 0.0 for n in names]
    context = [results["settings"][n]["context_miou_mean"] or 0.0 for n in names]
    ours.bar([i - 0.2 for i in x], miou, width=0.4, label="mIoU")
    ours.bar([i + 0.2 for i in x], context, width=0.4, label="context classes IoU")
    for i, name in enumerate(names):
        for run in results["settings"][name]["runs"]:
            ours.plot(i - 0.2, run["miou"], "k.", markersize=4)
            ours.plot(i + 0.2, run["context_miou"], "k.", markersize=4)
    ours.set_xticks(list(x), names)
    ours.set(ylabel="IoU", title="this course: tiny model, synthetic data (dots: seeds)")
    ours.legend(fontsize=8)
    rows = [n for n in names if n in PAPER_TABLE1]
    paper.bar(range(len(rows)), [PAPER_TABLE1[n][0] for n in rows], color="tab:green")
    paper.set_xticks(range(len(rows)), rows)
    paper.set_ylim(35, 42)
    paper.set(ylabel="mIoU (%)", title="paper Table 1: ADE20K val, ResNet-50")
    figure.text(0.5, -0.02, TRANSCRIPTION_NOTE, ha="center", fontsize=7)
    _save_figure(figure, path)


# --------------------------------------------------------------------------- the demo


# The demo's training recipe (TrainConfig fields), chosen by measurement to fit `make demo`'s
# budget (two trainings in about 3 minutes on 2 CPU cores); data/README.md gives the numbers.
DEMO_RECIPE: dict[str, Any] = {
    "iters": 360,  # x batch 8 = 2880 crops per model; ~0.4 CPU-s per step, ~150 CPU-s per model
    "batch_size": 8,
    "lr": 0.02,  # measured: mIoU 0.49 at 0.01 (300 steps); 0.05 unstable (bus/train not learnt)
    # Deviation: paper 0.5-2.0. Crops of an image magnified 2x often hold no sky, the only cue
    # for the context classes, and small scales waste the crop on padding.
    "scale": (0.75, 1.5),
    "eval_every": 120,  # three points for the val curves (an evaluation: 60 forward passes)
}


def run_demo(out: str | Path = "runs/demo", base: dict[str, Any] | None = None, log: Any = print) -> dict[str, Any]:
    """`make demo`: train the tiny PSPNet and the no-PPM baseline, compare them, draw a figure.

    Both are trained with ``DEMO_RECIPE`` updated by ``base`` (TrainConfig fields). Prints both
    models' per-class IoU (context classes marked) and, last, ``mIoU: 0.xxxx`` of PSPNet;
    writes ``out/results.json`` and ``out/demo.png`` (predictions and training curves).
    Running it again reuses finished runs (delete ``out`` to train again).
    """
    from pspnet_edu.data.labels import CLASS_NAMES
    from pspnet_edu.data.synthetic import CONTEXT_CLASSES

    out = Path(out)
    base = {**DEMO_RECIPE, **(base or {})}
    settings = {"pspnet": {}, "baseline": {"overrides": {**base.get("overrides", {}), "use_ppm": False}}}
    start = time.perf_counter()
    results = run_settings(settings, 1, out, base, log=log)
    pspnet, baseline = (results["settings"][k]["runs"][0] for k in ("pspnet", "baseline"))

    log(f"\n{'class':<15}{'baseline':>10}{'PSPNet':>10}")
    for c, name in enumerate(CLASS_NAMES):
        a, b = baseline["iou"][c], pspnet["iou"][c]
        if a is None and b is None:
            continue
        mark = "  <- context" if c in CONTEXT_CLASSES else ""
        log(f"{name:<15}{_fmt(a):>10}{_fmt(b):>10}{mark}")
    log(f"{'context mIoU':<15}{baseline['context_miou']:>10.4f}{pspnet['context_miou']:>10.4f}")
    log(f"{'pixel accuracy':<15}{baseline['pixel_acc']:>10.4f}{pspnet['pixel_acc']:>10.4f}")
    log(f"{'mIoU':<15}{baseline['miou']:>10.4f}{pspnet['miou']:>10.4f}")
    figure_path = out / "demo.png"
    plot_demo(out, figure_path)
    log(f"\nfigure: {figure_path}   runs: {out / 'pspnet'}, {out / 'baseline'}   "
        f"({time.perf_counter() - start:.0f} s)")
    log(f"mIoU: {pspnet['miou']:.4f}")
    return results


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def plot_demo(out: Path, path: Path, images: Sequence[int] = (0, 1, 2, 3)) -> None:
    """Validation images (one per sky: day/dusk x clear/cloudy), labels, both models' predictions,
    and the training curves of both runs: loss, val mIoU and the context classes' IoU."""
    # A bare Figure, not pyplot: no global backend switch, so a notebook calling this keeps
    # its inline figures.
    from matplotlib.figure import Figure

    from pspnet_edu.data import CityscapesSegmentation, EvalTransforms, denormalize
    from pspnet_edu.data.synthetic import CONTEXT_CLASSES
    from pspnet_edu.data.visualize import colorize, legend_handles, present_classes
    from pspnet_edu.inference import predict
    from pspnet_edu.train import load_checkpoint, model_from_checkpoint

    labels = {"baseline": "no PPM (dilated FCN)", "pspnet": "PSPNet"}
    runs = {name: load_checkpoint(out / name / "seed0") for name in labels}
    models = {name: model_from_checkpoint(saved) for name, saved in runs.items()}
    config = runs["pspnet"]["config"]
    dataset = CityscapesSegmentation(config["data"], config["val_split"], transforms=EvalTransforms())
    images = [i for i in images if i < len(dataset)]
    figure = Figure(figsize=(13, 1.8 * len(images) + 3.2), layout="constrained")
    grid = figure.add_gridspec(len(images) + 1, 4, height_ratios=[1] * len(images) + [1.6])
    masks = []
    for row, index in enumerate(images):
        image, mask = dataset[index]
        panels = [("image", denormalize(image).permute(1, 2, 0).numpy()), ("ground truth", colorize(mask))]
        masks.append(mask)
        for name, title in labels.items():
            prediction = predict(models[name], image)  # (H, W) trainIds
            masks.append(prediction)
            panels.append((title, colorize(prediction)))
        for column, (title, picture) in enumerate(panels):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(picture, interpolation="nearest")
            axis.set_axis_off()
            if row == 0:
                axis.set_title(title)
    loss_axis, miou_axis, context_axis, legend_axis = (figure.add_subplot(grid[-1, c]) for c in range(4))
    for name, saved in runs.items():
        train_rows, val_rows = saved["history"]["train"], saved["history"]["val"]
        loss_axis.plot([r["iteration"] for r in train_rows], [r["loss"] for r in train_rows], label=labels[name])
        steps = [r["iteration"] for r in val_rows]
        miou_axis.plot(steps, [r["miou"] for r in val_rows], "o-", label=labels[name])
        context_axis.plot(steps, [context_miou(r["iou"], CONTEXT_CLASSES) for r in val_rows], "o-",
                          label=labels[name])
    loss_axis.set(xlabel="iteration", ylabel="loss (main + alpha aux)", title="training loss")
    miou_axis.set(xlabel="iteration", ylabel="IoU", title="val mIoU")
    context_axis.set(xlabel="iteration", ylabel="IoU", title="val IoU, context classes")
    loss_axis.legend(fontsize=8)
    context_axis.legend(fontsize=8)
    legend_axis.set_axis_off()
    legend_axis.legend(handles=legend_handles(present_classes(*masks)), loc="center", fontsize=8, ncol=2,
                       frameon=False)
    _save_figure(figure, path)
