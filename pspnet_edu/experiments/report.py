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

from pspnet_edu.data import CLASS_NAMES, CONTEXT_PAIRS
from pspnet_edu.experiments.stats import compare_settings, mean_and_spread

REPOSITORY = Path(__file__).resolve().parents[2]
COURSE_CHECKPOINTS = ("pspnet_demo", "fcn_demo", "pspnet_tiny", "fcn_tiny")
THIN_CLASSES = ("pole", "traffic sign", "person", "car")  # Synthcity's small and thin classes


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
    """Per setting: seeds, mIoU mean ± spread, and each pair's and the thin classes' mean gain over ``baseline``."""
    groups = {" / ".join(pair): _class_ids(pair) for pair in CONTEXT_PAIRS}
    groups["thin classes"] = _class_ids(THIN_CLASSES)
    lines = ["| setting | seeds | mIoU (mean ± sd) | " + " | ".join(f"{g}: gain, t" for g in groups) + " |",
             "|---|---|---|" + "---|" * len(groups)]
    for name, setting in results["settings"].items():
        mean, spread = mean_and_spread([run["miou"] for run in setting["runs"]])
        cells = [f"`{name}`", str(len(setting["runs"])), f"{mean:.3f} ± {spread:.3f}"]
        for classes in groups.values():
            if name == baseline:
                cells.append("(baseline)")
                continue
            result = compare_settings(results, name, baseline, classes)
            cells.append(f"{result.mean:+.2f}, t {result.t:+.1f}" + (" *" if result.significant else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def blocks(repository: Path = REPOSITORY) -> dict[str, str]:
    """Every README block by its source: ``{"data/checkpoints": table, "results/ablate_ppm.json": table, ...}``."""
    found = {"data/checkpoints": checkpoints_table(repository / "data" / "checkpoints")}
    for name, baseline in (("ablate_ppm", "none"), ("ablate_alpha", "alpha=0")):
        results = json.loads((repository / "results" / f"{name}.json").read_text())
        found[f"results/{name}.json"] = ablation_table(results, baseline)
    return found


def main() -> None:
    for source, table in blocks().items():
        print(f"<!-- from: {source} -->\n{table}\n<!-- end -->\n")


if __name__ == "__main__":
    main()
