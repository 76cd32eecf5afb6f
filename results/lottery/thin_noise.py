"""How much of the thin classes' seed-to-seed spread is the 60-image validation split's sampling.

    python results/lottery/thin_noise.py RUNS_DIR results/lottery/thin_noise.json

RUNS_DIR: the ten-seed ablation's run folders (`pspnet-edu ablate ppm --variants B1236-avg none
B1236-control --num-seeds 10 ...`, RUNS_DIR/SETTING/seedS/last.pt). Every checkpoint predicts the
val split once (whole images, fp32); one confusion matrix per image. For each thin class:
- seed_sd: the sample standard deviation of its IoU over the ten seeds;
- bootstrap_sd: the standard deviation of the IoU of one checkpoint over 1,000 resamples of the
  60 images (with replacement), averaged over the seeds: the part the evaluation set's size alone
  would give;
- for a pair of networks of the same seed (PSPNet - FCN, control - FCN; FCN - the FCN of the next
  seed, seed 9's next being 0, as the reference of seed noise alone): the mean and the seed_sd of
  the difference and the bootstrap_sd of the difference, resampling the same images for both.
If bootstrap_sd is close to seed_sd, a larger val split would steady the per-seed comparison; if
it is well below, the spread is the trained networks' own.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

from pspnet_edu.data import CLASS_NAMES, CityscapesSegmentation, EvalTransforms
from pspnet_edu.inference import predict
from pspnet_edu.metrics import confusion_matrix
from pspnet_edu.provenance import provenance
from pspnet_edu.training.checkpoint import model_from_checkpoint

SETTINGS = ("none", "B1236-avg", "B1236-control")
THIN = ("pole", "traffic sign", "person", "car")
SEEDS, RESAMPLES = range(10), 1000


def per_image_confusions(checkpoint: Path, samples: list) -> np.ndarray:
    """(N, C, C) confusion matrices, one per val image."""
    model = model_from_checkpoint(checkpoint).eval()
    with torch.no_grad():
        preds = torch.cat([predict(model, torch.stack([x for x, _ in samples[i:i + 10]]))
                           for i in range(0, len(samples), 10)])
    return np.stack([confusion_matrix(p, t, len(CLASS_NAMES)).numpy() for p, (_, t) in zip(preds, samples)])


def thin_iou(cm: np.ndarray) -> np.ndarray:
    """IoU of the thin classes from confusion matrices summed over the second-to-last axes' images."""
    idx = [CLASS_NAMES.index(c) for c in THIN]
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    return (tp / (cm.sum(-1) + cm.sum(-2) - tp))[..., idx]


def main(runs: Path, out: Path) -> None:
    torch.set_num_threads(2)
    dataset = CityscapesSegmentation("data/synthcity", "val", transforms=EvalTransforms())
    samples = [dataset[i] for i in range(len(dataset))]
    cms = {(s, seed): per_image_confusions(runs / s / f"seed{seed}" / "last.pt", samples)
           for s in SETTINGS for seed in SEEDS}
    resamples = np.random.default_rng(0).integers(0, len(samples), size=(RESAMPLES, len(samples)))
    boot = {k: thin_iou(cm[resamples].sum(1)) for k, cm in cms.items()}  # (RESAMPLES, 4)
    full = {k: thin_iou(cm.sum(0)) for k, cm in cms.items()}  # (4,)

    def row(values: np.ndarray) -> dict:
        return dict(zip(THIN, np.round(values, 4).tolist()))

    result = {"about": __doc__.strip().splitlines()[4:], "settings": {}, "differences": {},
              "provenance": provenance()}
    for s in SETTINGS:
        result["settings"][s] = {
            "seed_sd": row(np.std([full[s, seed] for seed in SEEDS], axis=0, ddof=1)),
            "bootstrap_sd": row(np.mean([boot[s, seed].std(0) for seed in SEEDS], axis=0))}
    pairs = {"B1236-avg - none (same seed)": lambda seed: (("B1236-avg", seed), ("none", seed)),
             "B1236-control - none (same seed)": lambda seed: (("B1236-control", seed), ("none", seed)),
             "none - none (next seed)": lambda seed: (("none", seed), ("none", (seed + 1) % 10))}
    for name, pick in pairs.items():
        diffs = [full[a] - full[b] for a, b in map(pick, SEEDS)]
        result["differences"][name] = {
            "mean": row(np.mean(diffs, axis=0)), "seed_sd": row(np.std(diffs, axis=0, ddof=1)),
            "bootstrap_sd": row(np.mean([(boot[a] - boot[b]).std(0) for a, b in map(pick, SEEDS)], axis=0))}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("settings", "differences")}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
