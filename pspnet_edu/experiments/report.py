"""The README's measured tables, written from the committed files they come from.

The course checkpoints' sidecars (``data/checkpoints/NAME.json``) and the ablations' results
(``results/*.json``) are the sources; the README quotes them as the Markdown these functions
write, between ``<!-- from: ... -->`` and ``<!-- end -->`` markers, and ``tests/test_readme.py``
checks that every such block is exactly what its files give today, so that a figure cannot
go stale silently. After re-exporting a checkpoint or re-running an ablation, print the new
blocks with ``python -m pspnet_edu.experiments.report`` and paste them into README.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pspnet_edu.data import CLASS_NAMES, CONTEXT_PAIRS, THIN_CLASSES
from pspnet_edu.experiments.stats import compare_settings, context_miou, fisher_exact, mean_and_spread

REPOSITORY = Path(__file__).resolve().parents[2]
COURSE_CHECKPOINTS = ("pspnet_demo", "fcn_demo", "pspnet_tiny", "fcn_tiny")
LEARNT = 0.6  # a seed "learns" a context pair when the pair's mean IoU reaches this (chance: about 0.3)


def _mean_iou(iou: dict[str, float | None], names: Sequence[str]) -> float:
    values = [iou[name] for name in names if iou.get(name) is not None]
    return sum(values) / len(values)


def checkpoints_table(folder: Path = REPOSITORY / "data" / "checkpoints",
                      names: Sequence[str] = COURSE_CHECKPOINTS) -> str:
    """One row per course checkpoint: network, steps, val mIoU, the context pairs, the thin classes."""
    pairs = [" / ".join(pair) for pair in CONTEXT_PAIRS]
    lines = ["| checkpoint | network | steps × batch | val mIoU | " + " | ".join(pairs) + " | thin classes |",
             "|---|---|---|---|" + "---|" * len(pairs) + "---|"]
    for name in names:
        sidecar = json.loads((folder / f"{name}.json").read_text())
        recipe, iou = sidecar["recipe"], sidecar["iou"]
        network = "PSPNet" if recipe["model"]["use_ppm"] else "dilated FCN (no PPM)"
        cells = [f"`{name}.pt`", network, f"{sidecar['iterations']} × {recipe['batch_size']}",
                 f"{sidecar['val_miou']:.4f}", *(f"{_mean_iou(iou, pair):.2f}" for pair in CONTEXT_PAIRS),
                 f"{_mean_iou(iou, THIN_CLASSES):.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _class_ids(names: Sequence[str]) -> list[int]:
    return [CLASS_NAMES.index(name) for name in names]


def ablation_table(results: dict[str, Any], baseline: str) -> str:
    """Per setting: seeds, mIoU mean ± spread, and each pair's and the thin classes' mean gain over ``baseline``
    (paired by seed) with its 95 % interval and t; ``*`` marks a gain beyond seed noise."""
    groups = {" / ".join(pair): _class_ids(pair) for pair in CONTEXT_PAIRS}
    groups["thin classes"] = _class_ids(THIN_CLASSES)
    lines = ["| setting | seeds | mIoU (mean ± sd) | " + " | ".join(f"{g}: gain [95 % interval], t" for g in groups) + " |",
             "|---|---|---|" + "---|" * len(groups)]
    for name, setting in results["settings"].items():
        mean, spread = mean_and_spread([run["miou"] for run in setting["runs"]])
        cells = [f"`{name}`", str(len(setting["runs"])), f"{mean:.3f} ± {spread:.3f}"]
        for classes in groups.values():
            if name == baseline:
                cells.append("(baseline)")
                continue
            result = compare_settings(results, name, baseline, classes)
            cells.append(f"{result.mean:+.3f} [{result.low:+.3f}, {result.high:+.3f}], t {result.t:+.1f}"
                         + (" *" if result.significant else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def learnt(run: dict[str, Any], pair: Sequence[str]) -> bool:
    """Whether ``run`` learnt the context ``pair``: its mean IoU on the pair is at least :data:`LEARNT`."""
    return context_miou(run["iou"], _class_ids(pair)) >= LEARNT


def learnt_table(results: dict[str, Any], baselines: Sequence[str]) -> str:
    """Per setting and pair: how many seeds learnt it, and Fisher's one-sided p against each baseline.

    Outcomes are all-or-nothing (a pair's IoU is near 0.3 or near 0.8), so the count of seeds that
    learn a pair is the measurement, and Fisher's exact test asks whether a setting learns it more
    often than a baseline could by chance.
    """
    lines = ["| setting | " + " | ".join(f"{' / '.join(pair)}: seeds that learn it (IoU ≥ {LEARNT}), p vs "
                                         + ", ".join(f"`{b}`" for b in baselines) for pair in CONTEXT_PAIRS) + " |",
             "|---|" + "---|" * len(CONTEXT_PAIRS)]
    counts = {name: {pair: sum(learnt(run, pair) for run in setting["runs"]) for pair in CONTEXT_PAIRS}
              for name, setting in results["settings"].items()}
    runs = {name: len(setting["runs"]) for name, setting in results["settings"].items()}
    for name in results["settings"]:
        cells = [f"`{name}`"]
        for pair in CONTEXT_PAIRS:
            tests = [f"{fisher_exact(counts[name][pair], runs[name], counts[b][pair], runs[b]):.2g}"
                     for b in baselines if b != name and b in counts]
            cells.append(f"{counts[name][pair]} of {runs[name]}" + (f", p {', '.join(tests)}" if tests else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curves_table(results: dict[str, Any]) -> str:
    """Per setting, at each snapshot step: how many seeds have learnt each pair, and the effective field's radius.

    The counts use the evaluation at that step (pair IoU at least :data:`LEARNT`); the radius is
    the mean ± sd over seeds of the distance around the centre unit of the backbone's last stage
    that holds most of its gradient (``results["erf"]``), in input pixels, and the share of that
    gradient from sky pixels; step 0 is the initialisation.
    """
    curves = results["curves"]
    first = next(iter(curves.values()))[0]
    steps, pairs = first["erf"]["iteration"], list(first["pairs"])
    lines = ["| setting | measure | " + " | ".join(f"step {s}" for s in steps) + " |",
             "|---|---|" + "---|" * len(steps)]
    for name, runs in curves.items():
        for pair in pairs:
            counts = [sum(r["pairs"][pair][r["iteration"].index(s)] >= LEARNT for r in runs) if s else None
                      for s in steps]
            lines.append(f"| `{name}` | {pair}: seeds that learnt it | "
                         + " | ".join("-" if c is None else f"{c} of {len(runs)}" for c in counts) + " |")
        lines.append(f"| `{name}` | radius holding {results['erf']['mass']:.0%} of the gradient (px) | "
                     + " | ".join(_over_seeds([r["erf"]["radius"][k] for r in runs], 0) for k in range(len(steps)))
                     + " |")
        if "sky" in runs[0]["erf"]:
            lines.append(f"| `{name}` | share of the gradient from the sky | "
                         + " | ".join(_over_seeds([r["erf"]["sky"][k] for r in runs], 2) for k in range(len(steps)))
                         + " |")
    return "\n".join(lines)


def _over_seeds(values: list[float], digits: int) -> str:
    """Mean ± sample sd over seeds, or the one seed's value."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    mean, spread = mean_and_spread(values)
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


# results/NAME.json and its baseline; lottery/: the earlier files, kept for the record (*_v4: the final recipe on
# Synthcity v4; *_heads10x: the previous recipe, heads at 10x).
ABLATIONS = (("ablate_ppm", "none"), ("ablate_ppm_10seeds", "none"), ("ablate_alpha", "alpha=0"),
             ("lottery/ablate_ppm_10seeds_v4", "none"), ("lottery/ablate_ppm_v4", "none"),
             ("lottery/ablate_alpha_v4", "alpha=0"),
             ("lottery/ablate_ppm_10seeds_heads10x", "none"), ("lottery/ablate_ppm_avx2_heads10x", "none"),
             ("lottery/ablate_ppm_heads10x", "none"))


def blocks(repository: Path = REPOSITORY) -> dict[str, str]:
    """Every README block by its source: ``{"data/checkpoints": table, "results/ablate_ppm.json": table, ...}``."""
    found = {"data/checkpoints": checkpoints_table(repository / "data" / "checkpoints")}
    for name, baseline in ABLATIONS:
        results = json.loads((repository / "results" / f"{name}.json").read_text())  # a missing file is an error
        found[f"results/{name}.json"] = ablation_table(results, baseline)
        if "ablate_ppm" in name:
            baselines = tuple(b for b in ("none", "B1236-control") if b in results["settings"])
            found[f"results/{name}.json: learnt"] = learnt_table(results, baselines)
    curves = repository / "results" / "curves.json"
    if curves.is_file():  # the learning curves (pspnet-edu ablate curves)
        found["results/curves.json"] = curves_table(json.loads(curves.read_text()))
    return found


def main() -> None:
    for source, table in blocks().items():
        print(f"<!-- from: {source} -->\n{table}\n<!-- end -->\n")


if __name__ == "__main__":
    main()
