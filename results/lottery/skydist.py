"""Where does a network read a sky's cue from? Context-pair accuracy by distance from the sky.

    python results/lottery/skydist.py SYNTHCITY_ROOT OUT.json NAME=CHECKPOINT ...

For each checkpoint (a run's ``last.pt`` or a course checkpoint), over the val split of
SYNTHCITY_ROOT, whole image, fp32: for the pixels of each context pair (terrain / vegetation, bus /
train), the share predicted as their true class, in bands of chessboard distance to the nearest
true sky pixel of their image (1-32, 33-48, 49-64 and over 64 pixels), and the pixels of each band;
and each pair's nearest and farthest pixel from the sky (``distance_px``).
A network that reads a cue only where the sky is near scores well in the first band and at chance
(about 0.5) in the last; one whose field reaches the sky from anywhere in the frame scores alike in
all of them.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

from pspnet_edu.data import CLASS_NAMES, CONTEXT_PAIRS, CityscapesSegmentation, EvalTransforms
from pspnet_edu.provenance import portable_path, provenance
from pspnet_edu.training import load_checkpoint, model_from_checkpoint

torch.set_num_threads(1)
SKY = CLASS_NAMES.index("sky")
BANDS = ((1, 32), (33, 48), (49, 64), (65, None))  # chessboard distance to the sky, pixels


def sky_distance(masks: torch.Tensor) -> torch.Tensor:
    """Chessboard distance of every pixel of (N, H, W) masks to the nearest sky pixel of its image.

    Grown one pixel at a time by 3 x 3 max-pooling (a dilation); pixels of an image without sky
    keep -1.
    """
    region = (masks == SKY).float()[:, None]
    distance = torch.full(masks.shape, -1)
    for step in range(max(masks.shape[1:])):
        distance[(region[:, 0] > 0) & (distance < 0)] = step
        region = F.max_pool2d(region, 3, 1, 1)
    return distance


def by_distance(pred: torch.Tensor, masks: torch.Tensor, distance: torch.Tensor) -> dict:
    """For each context pair and band: [pixels, share predicted as their true class]."""
    out = {}
    for names in CONTEXT_PAIRS:
        a, b = (CLASS_NAMES.index(name) for name in names)
        pair = (masks == a) | (masks == b)
        rows = []
        for lower, upper in BANDS:
            band = pair & (distance >= lower) & (distance <= (upper or distance.max()))
            n = int(band.sum())
            rows.append([n, round(float((pred[band] == masks[band]).float().mean()), 4) if n else None])
        out["/".join(names)] = rows
    return out


if __name__ == "__main__":
    start = time.perf_counter()
    root, out, arguments = sys.argv[1], sys.argv[2], sys.argv[3:]
    dataset = CityscapesSegmentation(root, "val", transforms=EvalTransforms(), keep_decoded=True)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    masks = torch.stack([dataset[i][1] for i in range(len(dataset))])
    distance = sky_distance(masks)
    assert (distance >= 0).all(), "a val image without sky: its pixels have no distance to it"
    spans = {}  # each pair's nearest and farthest pixel from the sky, over the val split
    for names in CONTEXT_PAIRS:
        pair = (masks == CLASS_NAMES.index(names[0])) | (masks == CLASS_NAMES.index(names[1]))
        spans["/".join(names)] = [int(distance[pair].min()), int(distance[pair].max())]
    print("distance to the sky, px (min, max):", spans, flush=True)
    results = {}
    for argument in arguments:
        name, _, path = argument.partition("=")
        model = model_from_checkpoint(load_checkpoint(path))
        with torch.no_grad():
            pred = torch.cat([model(images[i:i + 10])["out"].argmax(1) for i in range(0, len(images), 10)])
        results[name] = by_distance(pred, masks, distance)
        print(name, results[name], flush=True)
    record = provenance(time.perf_counter() - start)
    record["command"] = " ".join(["python results/lottery/skydist.py", portable_path(root), portable_path(out),
                                  *(a.partition("=")[0] + "=" + portable_path(a.partition("=")[2]) for a in arguments)])
    with open(out, "w") as f:
        json.dump({"provenance": record, "bands_px": [list(b) for b in BANDS], "distance_px": spans,
                   "results": results}, f, indent=1)
        f.write("\n")
