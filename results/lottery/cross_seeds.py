"""Which part of a training seed decides whether the FCN reads the clouds: its initial weights or its draws?

    RUNS=DIR PYTHONPATH=. python results/lottery/cross_seeds.py INIT_SEED DATA_SEED   # one run
    python results/lottery/cross_seeds.py collect DIR results/lottery/cross_seeds.json

A training seed fixes two things: the initial weights (`build_model` seeds torch with it) and
everything drawn during training (the order of the images, each crop, scale and flip, and the
dropout masks: `train` seeds the loader and the global RNG with it). One run here is the demo's
recipe for the FCN (`DEMO_RECIPE` without the pyramid, evaluated every 200 steps, one thread), its
weights initialised from INIT_SEED and trained with DATA_SEED, in DIR/initI_dataD. In the ten-seed
ablation (results/lottery/ablate_ppm_10seeds_v4.json) the FCN read the clouds (terrain / vegetation, pair
IoU >= 0.6) with seeds 2, 3, 7 and 8 and not with 0, 1, 4, 5, 6 and 9. Crossing a reading seed
with one that does not read tells which half carries the outcome; init 2 with data 2 is the
ablation's own run again (a check that this driver trains as the package does).
"""
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from pspnet_edu.data import CLASS_NAMES, CONTEXT_PAIRS, dataset_fingerprint
from pspnet_edu.experiments.curves import LEARNT
from pspnet_edu.experiments.demo import DEMO_RECIPE
from pspnet_edu.experiments.sweeps import with_model
from pspnet_edu.provenance import provenance
from pspnet_edu.training import build_datasets, build_model, train

PAIRS = {"/".join(pair): pair for pair in CONTEXT_PAIRS}  # "bus/train", "terrain/vegetation"


def run(init_seed: int, data_seed: int) -> None:
    torch.set_num_threads(1)
    runs = os.environ.get("RUNS", "runs/cross_seeds")
    config = dataclasses.replace(with_model(DEMO_RECIPE, use_ppm=False), seed=data_seed, eval_every=200,
                                 data=os.environ.get("DATA", "data/synthcity"),
                                 out=f"{runs}/init{init_seed}_data{data_seed}")
    model = build_model(dataclasses.replace(config, seed=init_seed))
    train_set, val_set = build_datasets(config)
    start = time.time()
    train(config, model, train_set, val_set, data_id=dataset_fingerprint(config.data), class_names=CLASS_NAMES,
          progress=False)
    print(json.dumps({"init": init_seed, "data": data_seed, "seconds": round(time.time() - start, 1)}))


def collect(runs: Path, out: Path) -> None:
    ablation = json.loads(Path("results/lottery/ablate_ppm_10seeds_v4.json").read_text())
    names = ablation["class_names"]
    own = {r["seed"]: dict(zip(names, r["iou"])) for r in ablation["settings"]["none"]["runs"]}
    rows = []
    for history_path in sorted(runs.glob("init*_data*/history.json")):
        init_seed, data_seed = (int(part[4:]) for part in history_path.parent.name.split("_"))
        history = json.loads(history_path.read_text())
        by_step = [dict(zip(history["class_names"], v["iou"])) for v in history["val"]]
        last = by_step[-1]
        pair = {p: round(statistics.mean(last[c] for c in cs), 3) for p, cs in PAIRS.items()}
        seconds = torch.load(history_path.parent / "last.pt", map_location="cpu", weights_only=False)["seconds"]
        rows.append({"init": init_seed, "data": data_seed, "seconds": round(seconds, 1),
                     "miou": round(history["val"][-1]["miou"], 4), **pair,
                     "terrain/vegetation by step": {v["iteration"]: round(statistics.mean(d[c] for c in PAIRS["terrain/vegetation"]), 3)
                                                    for v, d in zip(history["val"], by_step)},
                     "clouds read": pair["terrain/vegetation"] >= LEARNT,
                     "the ablation's run of the init seed": round(statistics.mean(own[init_seed][c] for c in PAIRS["terrain/vegetation"]), 3),
                     "the ablation's run of the data seed": round(statistics.mean(own[data_seed][c] for c in PAIRS["terrain/vegetation"]), 3)})
    result = {"about": __doc__.strip().splitlines()[5:], "runs": rows, "provenance": provenance()}
    out.write_text(json.dumps(result, indent=1) + "\n")
    for r in rows:
        print(r["init"], r["data"], r["miou"], r["terrain/vegetation"], r["clouds read"],
              "| ablation: init seed", r["the ablation's run of the init seed"], "data seed", r["the ablation's run of the data seed"])


if __name__ == "__main__":
    if sys.argv[1] == "collect":
        collect(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        run(int(sys.argv[1]), int(sys.argv[2]))
