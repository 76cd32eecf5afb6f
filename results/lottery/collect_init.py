"""Collect drive_init.py's runs into zero_init.json, each seed paired with the ten-seed ablation's.

    python results/lottery/collect_init.py RUNS_DIR results/lottery/zero_init.json

RUNS_DIR/NAME/seedS/history.json and last.pt (its training seconds) as drive_init.py wrote them
(DEMO_RECIPE of commit 8e591d7, whose training is the ten-seed ablation's: its FCN and PSPNet of
the same seed, from results/lottery/ablate_ppm_10seeds_heads10x.json, are the pairs). A pair is read when its two
IoUs average >= 0.6. The thin-class aim of issue 18, seed by seed: no thin class more than 0.03
below the same seed's FCN.
"""
import json
import statistics
import sys
from pathlib import Path

import torch

from pspnet_edu.data import CONTEXT_PAIRS, THIN_CLASSES as THIN
from pspnet_edu.experiments.curves import LEARNT
from pspnet_edu.experiments.stats import paired_t
from pspnet_edu.provenance import provenance

SETTINGS = {
    "zh": "PSPNet whose head conv starts with zero weights on the pooled channels (zero_head_ppm)",
    "zg": "PSPNet whose pyramid branches' BatchNorm weights start at 0 (zero_gamma; seeds 0-3, stopped)",
}
PAIRS = {"/".join(pair): pair for pair in CONTEXT_PAIRS}  # "bus/train", "terrain/vegetation"


def paired(a: list[float], b: list[float]) -> dict:
    """Mean of the paired differences a - b and their t statistic (n - 1 degrees of freedom)."""
    return {"mean": round(statistics.mean(x - y for x, y in zip(a, b)), 4), "t": round(paired_t(a, b), 2)}


def main(runs: Path, out: Path) -> None:
    ablation = json.loads(Path("results/lottery/ablate_ppm_10seeds_heads10x.json").read_text())
    names = ablation["class_names"]
    base = {k: {r["seed"]: dict(zip(names, r["iou"])) for r in ablation["settings"][k]["runs"]}
            for k in ("none", "B1236-avg")}
    result = {"about": __doc__.strip().splitlines()[4:], "settings": {}, "provenance": provenance()}
    for name, about in SETTINGS.items():
        seeds = []
        for path in sorted((runs / name).glob("seed*/history.json"), key=lambda p: int(p.parent.name[4:])):
            history = json.loads(path.read_text())
            val = history["val"]
            iou = dict(zip(history["class_names"], val[-1]["iou"]))
            seed = int(path.parent.name[4:])
            first = {pair: next((v["iteration"] for v in val
                                 if sum(dict(zip(history["class_names"], v["iou"]))[c] for c in cs) / 2 >= LEARNT), None)
                     for pair, cs in PAIRS.items()}
            seconds = torch.load(path.parent / "last.pt", map_location="cpu", weights_only=False)["seconds"]
            seeds.append({"seed": seed, "iteration": val[-1]["iteration"], "seconds": round(seconds, 1),
                          "miou": round(val[-1]["miou"], 4),
                          **{pair: round(sum(iou[c] for c in cs) / 2, 3) for pair, cs in PAIRS.items()},
                          "first read at": first,
                          "thin": {c: round(iou[c], 4) for c in THIN},
                          "thin minus FCN": {c: round(iou[c] - base["none"][seed][c], 4) for c in THIN},
                          "thin minus PSPNet": {c: round(iou[c] - base["B1236-avg"][seed][c], 4) for c in THIN}})
        if not seeds:
            continue
        summary = {"seeds": len(seeds), "miou_mean": round(statistics.mean(s["miou"] for s in seeds), 4),
                   **{f"{pair} read": sum(s[pair] >= LEARNT for s in seeds) for pair in PAIRS},
                   "thin aim met (seeds)": sum(min(s["thin minus FCN"].values()) >= -0.03 for s in seeds)}
        for other, setting in (("FCN", "none"), ("PSPNet", "B1236-avg")):
            theirs = [base[setting][s["seed"]] for s in seeds]
            summary[f"thin minus {other}, paired"] = {
                **{c: paired([s["thin"][c] for s in seeds], [t[c] for t in theirs]) for c in THIN},
                "four together": paired([statistics.mean(s["thin"].values()) for s in seeds],
                                        [statistics.mean(t[c] for c in THIN) for t in theirs])}
        result["settings"][name] = {"about": about, "summary": summary, "runs": seeds}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v["summary"] for k, v in result["settings"].items()}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
