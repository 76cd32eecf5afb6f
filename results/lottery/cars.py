"""Where are the cars lost? The car pixels a trained network calls bus or train, and where they lie.

    python results/lottery/cars.py SYNTHCITY_ROOT OUT.json NAME=CHECKPOINT[@ROOT] ...

For each checkpoint (a run's ``last.pt`` or a course checkpoint), over the val split of
SYNTHCITY_ROOT (or of ROOT), whole image, fp32: car IoU; the share of car pixels predicted bus
or train; of those, the share within 8 pixels (chessboard distance) of a true bus or train; the
val images in which more than half the car pixels are called bus or train; and car IoU again
when the long vehicles' two probabilities are pooled on the larger one (a network undecided
between bus and train splits their mass; pooling it shows whether that is what leaves cars to
the car class).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

from pspnet_edu.data import CLASS_NAMES, CityscapesSegmentation, EvalTransforms
from pspnet_edu.metrics import confusion_matrix, iou_per_class
from pspnet_edu.provenance import portable_path, provenance
from pspnet_edu.training import load_checkpoint, model_from_checkpoint
from pspnet_edu.training.trained_on import data_source, describe_source

torch.set_num_threads(1)
CAR, BUS, TRAIN = (CLASS_NAMES.index(name) for name in ("car", "bus", "train"))
NEAR = 8  # pixels


def near(region: torch.Tensor, pixels: int) -> torch.Tensor:
    """Pixels within ``pixels`` (chessboard distance) of ``region``: max-pool dilation."""
    return F.max_pool2d(region[None, None].float(), 2 * pixels + 1, 1, pixels)[0, 0] > 0


def cars(model: torch.nn.Module, dataset: CityscapesSegmentation) -> dict:
    """The car measures of the module docstring for one model over ``dataset``."""
    classes = len(CLASS_NAMES)
    argmax_cm = torch.zeros(classes, classes, dtype=torch.long)
    pooled_cm = torch.zeros(classes, classes, dtype=torch.long)
    car_px = lost = lost_near = 0
    images_mostly_lost = 0
    for index in range(len(dataset)):
        image, mask = dataset[index]
        with torch.no_grad():
            probs = model(image[None])["out"].softmax(1)[0]
        pred = probs.argmax(0)
        argmax_cm += confusion_matrix(pred, mask, classes)
        pooled = probs.clone()
        both = probs[BUS] + probs[TRAIN]
        bus_leads = probs[BUS] >= probs[TRAIN]
        pooled[BUS], pooled[TRAIN] = torch.where(bus_leads, both, 0), torch.where(bus_leads, 0, both)
        pooled_cm += confusion_matrix(pooled.argmax(0), mask, classes)
        car = mask == CAR
        wrong = car & ((pred == BUS) | (pred == TRAIN))
        car_px += int(car.sum()); lost += int(wrong.sum())
        lost_near += int((wrong & near((mask == BUS) | (mask == TRAIN), NEAR)).sum())
        images_mostly_lost += int(car.any() and wrong.sum() > car.sum() / 2)
    return {"car_iou": round(float(iou_per_class(argmax_cm)[CAR]), 4),
            "car_called_bus_or_train": round(lost / car_px, 4),
            f"of_those_within_{NEAR}px_of_a_bus_or_train": round(lost_near / max(lost, 1), 4),
            "val_images_with_most_cars_lost": images_mostly_lost,
            "car_iou_long_vehicles_pooled": round(float(iou_per_class(pooled_cm)[CAR]), 4)}


def portable(argument: str) -> str:
    """``NAME=PATH[@ROOT]`` with its paths made portable (no folder of this machine in the record)."""
    name, _, paths = argument.partition("=")
    return f"{name}=" + "@".join(portable_path(part) for part in paths.split("@"))


if __name__ == "__main__":
    start = time.perf_counter()
    root, out, arguments = sys.argv[1], sys.argv[2], sys.argv[3:]
    results, datasets = {}, {}  # one dataset per Synthcity folder, built (and its val split decoded) once
    for argument in arguments:
        name, _, paths = argument.partition("=")
        path, _, data = paths.partition("@")
        folder = data or root
        if folder not in datasets:
            datasets[folder] = CityscapesSegmentation(folder, "val", transforms=EvalTransforms(), keep_decoded=True)
        results[name] = {"data": describe_source(data_source(folder)),
                         **cars(model_from_checkpoint(load_checkpoint(path)), datasets[folder])}
        print(name, results[name], flush=True)
    record = provenance(time.perf_counter() - start)
    record["command"] = " ".join(["python results/lottery/cars.py", portable_path(root), portable_path(out),
                                  *map(portable, arguments)])
    with open(out, "w") as f:
        json.dump({"provenance": record, "results": results}, f, indent=1)
        f.write("\n")
