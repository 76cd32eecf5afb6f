"""Which dusk skies does PSPNet misread? Per val image with a long vehicle: the glow it shows, the share called wrong.

    python results/lottery/glow_misses.py OUT.json LABEL=SYNTHCITY_ROOT:RUN_FOLDER[,RUN_FOLDER...] ...

For each LABEL (a Synthcity set and the runs trained on it: folders holding ``last.pt``), over the
val images of SYNTHCITY_ROOT that hold a bus or a train: the share of the visible sky that shows
glow (pixels whose red exceeds their blue by more than 60 of 255: the day sky and the clouds never
do; the rule of lesson 06's measurement), the vehicles' pixel count, and for each run the share of
the long-vehicle pixels that the network calls the *other* long class (a train pixel called bus, a
bus pixel called train), whole image, fp32. Rows are listed buses first, then trains, each by the
glow their sky shows. A network that reads the glow from the sky's average should miss the trains
whose skies show the least glow.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pspnet_edu.data import CLASS_NAMES, CityscapesSegmentation, EvalTransforms
from pspnet_edu.provenance import portable_path, provenance
from pspnet_edu.training import load_checkpoint, model_from_checkpoint

torch.set_num_threads(1)
BUS, TRAIN, SKY = (CLASS_NAMES.index(name) for name in ("bus", "train", "sky"))
GLOW_MARGIN = 60  # red - blue, of 255


def sky_glow(image_path: str, mask: torch.Tensor) -> float:
    """The share of the sky's pixels that show glow (red above blue by more than GLOW_MARGIN)."""
    rgb = np.asarray(Image.open(image_path).convert("RGB")).astype(int)
    sky = mask.numpy() == SKY
    return float(((rgb[..., 0] - rgb[..., 2] > GLOW_MARGIN) & sky).sum() / max(sky.sum(), 1))


def portable_run(run: str) -> str:
    """A run folder without this machine's path, keeping the folder of its runs: ``.../RUNS/NAME/seedS``."""
    parts = Path(run).parts
    return portable_path(run) if not run.startswith("/") or len(parts) < 4 else ".../" + "/".join(parts[-3:])


def misses(root: str, runs: list[str]) -> list[dict]:
    """One row per val image with a long vehicle: buses first, then trains, each by the glow its sky shows."""
    dataset = CityscapesSegmentation(root, "val", transforms=EvalTransforms(), keep_decoded=True)
    models = [model_from_checkpoint(load_checkpoint(f"{run}/last.pt")).eval() for run in runs]
    rows = []
    for index, (image_path, *_) in enumerate(dataset.samples):
        image, mask = dataset[index]
        vehicle = (mask == BUS) | (mask == TRAIN)
        if not vehicle.any():
            continue
        wrong = []
        for model in models:
            with torch.no_grad():
                pred = model(image[None])["out"][0].argmax(0)
            swapped = ((mask == TRAIN) & (pred == BUS)) | ((mask == BUS) & (pred == TRAIN))
            wrong.append(round(float(swapped.sum() / vehicle.sum()), 3))
        kind = "/".join(CLASS_NAMES[c] for c in (BUS, TRAIN) if (mask == c).any())  # one kind per scene in Synthcity
        rows.append({"image": image_path.name, "vehicle": kind, "pixels": int(vehicle.sum()),
                     "sky_glow": round(sky_glow(image_path, mask), 3), "called_the_other": wrong})
    return sorted(rows, key=lambda row: (row["vehicle"], row["sky_glow"]))


if __name__ == "__main__":
    start = time.perf_counter()
    if len(sys.argv) < 3 or any("=" not in a or ":" not in a for a in sys.argv[2:]):
        sys.exit("usage: python results/lottery/glow_misses.py OUT.json LABEL=SYNTHCITY_ROOT:RUN_FOLDER[,RUN_FOLDER...] ...")
    out, results, portable = sys.argv[1], {}, []
    for argument in sys.argv[2:]:
        label, _, spec = argument.partition("=")
        root, _, runs = spec.partition(":")
        rows = misses(root, runs.split(","))
        results[label] = {"runs": [portable_run(run) for run in runs.split(",")], "images": rows}
        portable.append(f"{label}={portable_path(root)}:{','.join(results[label]['runs'])}")
        trains = [row for row in rows if row["vehicle"] == "train"]
        print(label, *(f"{row['sky_glow']:.3f}:{max(row['called_the_other']):.2f}" for row in trains), flush=True)
    record = provenance(time.perf_counter() - start)
    record["command"] = " ".join(["python results/lottery/glow_misses.py", portable_path(out), *portable])
    with open(out, "w") as f:
        json.dump({"about": __doc__.strip().splitlines()[0], "provenance": record, "results": results}, f, indent=1)
        f.write("\n")
