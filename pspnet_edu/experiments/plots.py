"""Figures of the experiments: the alpha sweep and the PPM ablation beside the paper, and the demo.

Every figure is drawn on a bare ``matplotlib.figure.Figure`` (no pyplot, no global backend
switch, so a notebook calling these keeps its inline figures) and saved atomically as PNG.
Bars start at zero; gains are drawn as differences from the baseline, in the same order on
both sides, so that a small effect looks small.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from pspnet_edu.data import CONTEXT_PAIRS, THIN_CLASSES, CityscapesSegmentation, EvalTransforms, denormalize
from pspnet_edu.data.labels import CLASS_NAMES
from pspnet_edu.data.visualize import colorize, error_map, legend_handles, present_classes
from pspnet_edu.experiments.paper import PAPER_ROW_OF_VARIANT, PAPER_TABLE1, PAPER_TABLE2, TRANSCRIPTION_NOTE
from pspnet_edu.experiments.stats import compare_settings, context_miou, finite_mean, mean_interval
from pspnet_edu.files import write_atomic
from pspnet_edu.inference import predict
from pspnet_edu.training import load_checkpoint, model_from_checkpoint

PAIR_IDS = [tuple(CLASS_NAMES.index(name) for name in pair) for pair in CONTEXT_PAIRS]


def save_figure(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())


def pair_iou(run: dict[str, Any], pair: Sequence[int]) -> float:
    """Mean IoU of one context pair in one run."""
    return context_miou(run["iou"], pair)


def plot_alpha(results: dict[str, Any], path: Path | None = None) -> Figure:
    """mIoU and the thin classes' IoU against alpha, their paired gains over alpha = 0, and Table 2.

    Left: each seed (dots) and the mean with its 95 % interval. Middle: the gain over the first
    setting (alpha = 0), seed by seed (:func:`~pspnet_edu.experiments.stats.compare_settings`),
    with its paired 95 % interval, from zero: the same seeds make both sides, so the gain is
    measured more precisely than either level. Right: the paper's Table 2, its axis cut.
    """
    figure = Figure(figsize=(14, 3.8), layout="constrained")
    levels, gains, paper = figure.subplots(1, 3)
    names = list(results["settings"])
    settings = [results["settings"][name] for name in names]
    alphas = [s["config"]["alpha"] for s in settings]
    thin = [CLASS_NAMES.index(name) for name in THIN_CLASSES]
    every_class = list(range(len(CLASS_NAMES)))
    series = {"mIoU": (every_class, "tab:blue"),
              "thin classes (" + ", ".join(THIN_CLASSES) + ")": (thin, "tab:orange")}
    for label, (classes, colour) in series.items():
        values = [[r["miou"] if classes is every_class else context_miou(r["iou"], classes) for r in s["runs"]]
                  for s in settings]
        for alpha, seeds in zip(alphas, values):
            levels.plot([alpha] * len(seeds), seeds, "o", color=colour, alpha=0.3, markersize=4)
        means, halves = zip(*(_mean_and_half_interval(seeds) for seeds in values))
        levels.errorbar(alphas, means, yerr=halves, fmt="-", color=colour, capsize=3, label=label)
        if len(settings[0]["runs"]) < 2:
            continue  # a paired gain needs two seeds or more (the panel says so below)
        compared = [compare_settings(results, name, names[0], classes) for name in names[1:]]
        gains.errorbar(alphas[1:], [c.mean for c in compared],
                       yerr=[[c.mean - c.low for c in compared], [c.high - c.mean for c in compared]],
                       fmt="o-", color=colour, capsize=3, label=label)
    levels.set(xlabel="alpha (auxiliary loss weight)", ylabel="val IoU", ylim=(0, 1),
               title=f"tiny FCN, Synthcity: {len(settings[0]['runs'])} seeds, mean and 95 % interval")
    levels.legend(fontsize=7, loc="lower right")
    gains.axhline(0, color="black", linewidth=0.8)
    gains.set(xlabel="alpha", ylabel=f"gain over alpha = {alphas[0]:g} (IoU)", xlim=(-0.05, 1.05),
              title="paired gain over the same seeds at alpha = 0, 95 % interval")
    if gains.containers:
        gains.legend(fontsize=7, loc="lower left")
    else:
        gains.text(0.5, 0.5, "paired gains need two seeds or more", ha="center", transform=gains.transAxes)
    paper_miou = [v[0] for v in PAPER_TABLE2.values()]
    paper.plot(list(PAPER_TABLE2), paper_miou, "s-", color="tab:green")
    low = int(min(paper_miou)) - 1  # the paper's effect is 1.4 points: from 0 it would be a flat line
    paper.set(xlabel="alpha", ylabel=f"mIoU (%), axis cut: starts at {low}",
              title="paper Table 2: ADE20K val, ResNet-50 FCN", ylim=(low, int(max(paper_miou)) + 1))
    figure.text(0.5, -0.04, TRANSCRIPTION_NOTE, ha="center", fontsize=7)
    if path is not None:
        save_figure(figure, path)
    return figure


def _mean_and_half_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half the width of its 95 % interval (:func:`~pspnet_edu.experiments.stats.mean_interval`);
    one seed has no interval (0)."""
    if len(values) < 2:
        return float(values[0]), 0.0
    mean, low, _ = mean_interval(values)
    return mean, mean - low


def plot_ppm(results: dict[str, Any], path: Path | None = None) -> Figure:
    """Gain over no PPM of each variant: ours per context pair (seeds as dots), the paper's in mIoU points.

    A sweep without the ``none`` setting (``--variants B1-avg``) has nothing to take a gain
    over: its panel draws each pair's IoU itself, and says so.
    """
    names = [n for n in results["settings"] if n != "none"]
    none = results["settings"].get("none")
    base = {run["seed"]: run for run in none["runs"]} if none is not None else None

    def baseline_iou(run: dict[str, Any], pair: tuple[int, ...]) -> float:
        return pair_iou(base[run["seed"]], pair) if base is not None else 0.0

    figure = Figure(figsize=(12, 3.8), layout="constrained")
    ours, paper = figure.subplots(1, 2)
    width = 0.8 / len(PAIR_IDS)
    for k, pair in enumerate(PAIR_IDS):
        x = [i + (k - (len(PAIR_IDS) - 1) / 2) * width for i in range(len(names))]
        gains = [[pair_iou(r, pair) - baseline_iou(r, pair) for r in results["settings"][n]["runs"]]
                 for n in names]
        label = " / ".join(CLASS_NAMES[c] for c in pair)
        ours.bar(x, [finite_mean(g) for g in gains], width=width, label=label)
        for xi, g in zip(x, gains):
            ours.plot([xi] * len(g), g, "k.", markersize=3)
    ours.axhline(0, color="black", linewidth=0.8)
    ours.set_xticks(range(len(names)), names, fontsize=8)
    ours.set(ylabel="IoU gain over no PPM" if base is not None else "IoU (no 'none' run: not a gain)",
             title="this course: context pairs (dots: seeds)")
    ours.legend(fontsize=8)
    rows = [(n, PAPER_ROW_OF_VARIANT.get(n)) for n in names]
    baseline = PAPER_TABLE1["baseline"][0]
    paper.bar(range(len(rows)), [PAPER_TABLE1[r][0] - baseline if r else 0.0 for _, r in rows], color="tab:green")
    paper.axhline(0, color="black", linewidth=0.8)
    paper.set_xticks(range(len(rows)), [r or f"{n}\n(not in the paper)" for n, r in rows], fontsize=7)
    paper.set(ylabel="mIoU gain over the baseline (points)", title="paper Table 1: ADE20K val, ResNet-50")
    figure.text(0.5, -0.04, TRANSCRIPTION_NOTE, ha="center", fontsize=7)
    if path is not None:
        save_figure(figure, path)
    return figure


def plot_demo(labels: dict[Path, str], path: Path, images: Sequence[int] = (0, 1, 2, 3)) -> None:
    """Validation images (one per sky), ground truth, each run's prediction and its error map,
    and the training curves: loss, val mIoU, and the IoU of each context pair.

    ``labels`` maps run folders to their names in the figure."""
    runs = {name: load_checkpoint(name) for name in labels}
    models = {name: model_from_checkpoint(saved) for name, saved in runs.items()}
    config = runs[next(iter(labels))]["config"]
    dataset = CityscapesSegmentation(config["data"], config["val_split"], transforms=EvalTransforms())
    images = [i for i in images if i < len(dataset)]
    columns = 2 + 2 * len(labels)
    figure = Figure(figsize=(3.1 * columns, 1.6 * len(images) + 3.4), layout="constrained")
    grid = figure.add_gridspec(len(images) + 1, columns, height_ratios=[1] * len(images) + [1.8])
    masks = []
    for row, index in enumerate(images):
        image, mask = dataset[index]
        panels = [("image", denormalize(image).permute(1, 2, 0).numpy()), ("ground truth", colorize(mask))]
        masks.append(mask)
        for name, title in labels.items():
            prediction = predict(models[name], image)  # (H, W) trainIds
            masks.append(prediction)
            panels += [(title, colorize(prediction)), (f"{title}: errors (red)", error_map(prediction, mask))]
        for column, (title, picture) in enumerate(panels):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(picture, interpolation="nearest")
            axis.set_axis_off()
            if row == 0:
                axis.set_title(title, fontsize=9)
    _curves(figure, grid, runs, labels)
    legend_axis = figure.add_subplot(grid[-1, columns - 1])
    legend_axis.set_axis_off()
    legend_axis.legend(handles=legend_handles(present_classes(*masks)), loc="center", fontsize=7, ncol=2, frameon=False)
    save_figure(figure, path)


def _curves(figure: Figure, grid: Any, runs: dict[Path, dict[str, Any]], labels: dict[Path, str]) -> None:
    loss_axis, miou_axis, *pair_axes = (figure.add_subplot(grid[-1, c]) for c in range(2 + len(PAIR_IDS)))
    for name, saved in runs.items():
        train_rows, val_rows = saved["history"]["train"], saved["history"]["val"]
        loss_axis.plot([r["iteration"] for r in train_rows], [r["loss"] for r in train_rows], label=labels[name])
        steps = [r["iteration"] for r in val_rows]
        miou_axis.plot(steps, [r["miou"] for r in val_rows], "o-", label=labels[name])
        for axis, pair in zip(pair_axes, PAIR_IDS):
            axis.plot(steps, [context_miou(r["iou"], pair) for r in val_rows], "o-", label=labels[name])
    loss_axis.set(xlabel="iteration", ylabel="main + alpha aux", title="training loss")
    miou_axis.set(xlabel="iteration", ylabel="IoU", title="val mIoU", ylim=(0, 1))
    for axis, pair in zip(pair_axes, PAIR_IDS):
        axis.set(xlabel="iteration", ylabel="IoU", title=f"val IoU, {' / '.join(CLASS_NAMES[c] for c in pair)}",
                 ylim=(0, 1))
    loss_axis.legend(fontsize=8)


CURVE_COLOURS = {"none": "tab:red", "B1236-avg": "tab:blue", "B1236-control": "tab:grey"}


def plot_curves(results: dict[str, Any], path: Path | None = None) -> Figure:
    """Each context pair's val IoU along training per setting, and the backbone's effective field.

    Thin lines: seeds; thick: their mean. Right: the radius (input pixels) around the centre unit
    of ``backbone.layer4`` that holds most of its gradient (``results["erf"]``), and the share of
    that gradient that comes from the sky (where both cues are), at each snapshot.
    """
    curves = results["curves"]
    pairs = list(next(iter(curves.values()))[0]["pairs"])
    figure = Figure(figsize=(19, 3.8), layout="constrained")
    axes = figure.subplots(1, len(pairs) + 2)
    for name, runs in curves.items():
        colour = CURVE_COLOURS.get(name)
        label = f"{name} ({len(runs)} seeds)"
        for ax, pair in zip(axes, pairs):
            for r in runs:
                ax.plot(r["iteration"], r["pairs"][pair], color=colour, alpha=0.25, linewidth=0.8)
            ax.plot(runs[0]["iteration"], [finite_mean(v) for v in zip(*(r["pairs"][pair] for r in runs))],
                    color=colour, linewidth=2.2, label=label)
        field, sky = axes[-2:]
        for ax, key in ((field, "radius"), (sky, "sky")):
            for r in runs:
                ax.plot(r["erf"]["iteration"], r["erf"][key], "o", color=colour, alpha=0.3, markersize=3)
            ax.plot(runs[0]["erf"]["iteration"], [finite_mean(v) for v in zip(*(r["erf"][key] for r in runs))],
                    "-", color=colour, linewidth=2.2, label=label)
    threshold = results["learnt_threshold"]
    for ax, pair in zip(axes[:len(pairs)], pairs):
        ax.axhline(threshold, color="black", linestyle=":", linewidth=0.8)
        ax.set(xlabel="training step", ylabel="val IoU of the pair", ylim=(0, 1), title=f"{pair} (dotted: 'learnt')")
    axes[0].legend(fontsize=7, loc="lower right")
    erf = results["erf"]
    h, w = erf["input"]
    field.axhline((h ** 2 + w ** 2) ** 0.5 / 2, color="black", linestyle="--", linewidth=0.8)
    field.text(0, (h ** 2 + w ** 2) ** 0.5 / 2, " centre to corner", va="bottom", fontsize=7)
    field.set(xlabel="training step", ylabel=f"radius holding {erf['mass']:.0%} of the gradient (px)", ylim=(0, None),
              title=f"effective field of {erf['node']} ({h}x{w} input)")
    field.legend(fontsize=7, loc="lower right")
    sky.axhline(erf["scene_sky_share"], color="black", linestyle="--", linewidth=0.8)
    sky.text(0, erf["scene_sky_share"], " sky's share of the pixels", va="bottom", fontsize=7)
    sky.set(xlabel="training step", ylabel="share of the gradient from sky pixels", ylim=(0, 1),
            title=f"how much the centre unit reads the sky ({erf['scenes']} val scenes)")
    if path is not None:
        save_figure(figure, path)
    return figure
