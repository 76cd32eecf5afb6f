"""Collect the bus/train-lottery exploration runs (drive.py) and the probes (probe.py) into exploration.json.

    python results/lottery/collect.py RUNS_DIR PROBES.jsonl   # RUNS_DIR/NAME/seedS/history.json

Each run: DEMO_RECIPE of commit a4213dd (800 steps of 4 crops, lr 0.02, scale 0.75-1.5, alpha 0.4,
no class weights, 32 channels per pyramid level) with the one change its setting names, one torch
thread, two runs at a time, validated every 200 (400) steps on the 60 val images of Synthcity v4.
"""
import json
import sys
from pathlib import Path

from pspnet_edu.provenance import provenance

SETTINGS = {
    "mf_psp": "PSPNet, median-frequency class weights",
    "sq_psp": "PSPNet, sqrt-median-frequency class weights",
    "sq_fcn": "no-PPM FCN, sqrt-median-frequency class weights",
    "enet_psp": "PSPNet, ENet class weights 1/ln(1.02 + p)",
    "enet_fcn": "no-PPM FCN, ENet class weights",
    "a1_psp": "PSPNet, alpha 1.0 instead of 0.4 (no class weights)",
    "sq_b2": "PSPNet, sqrt-median-frequency weights, 1600 steps of 2 crops (the same images)",
    "sq_c64": "PSPNet, sqrt-median-frequency weights, 64 channels per pyramid level",
}
PAIRS = {"bus/train": (15, 16), "terrain/vegetation": (9, 8)}
THIN = (5, 7, 11, 13)


def summary(history: dict) -> dict:
    last = history["val"][-1]
    iou = last["iou"]
    return {"miou": round(last["miou"], 4),
            **{pair: round(sum(iou[c] for c in cs) / 2, 3) for pair, cs in PAIRS.items()},
            "thin": round(sum(iou[c] for c in THIN) / 4, 3),
            "bus/train by step": {v["iteration"]: round(sum(v["iou"][c] for c in PAIRS["bus/train"]) / 2, 3)
                                  for v in history["val"]}}


def main(runs: Path, probes: Path) -> None:
    out = {"about": __doc__.strip().splitlines()[-3:], "settings": {}, "probes": [], "provenance": provenance()}
    for name, description in SETTINGS.items():
        seeds = {f.parent.name: summary(json.loads(f.read_text())) for f in sorted((runs / name).glob("seed*/history.json"))}
        out["settings"][name] = {"description": description, "runs": seeds}
    out["probes"] = [json.loads(line) for line in probes.read_text().splitlines() if line.strip()]
    Path(__file__).with_name("exploration.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
