"""``pspnet-edu evaluate``: per-class IoU, accuracies and mIoU of a checkpoint on a split.

Argument parsing only: the model is prepared by :func:`pspnet_edu.inference.prepare_for_inference`
and scored by :func:`pspnet_edu.inference.evaluate`. See notebooks/08_evaluation.ipynb.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pspnet_edu.cli.options import (add_inference_options, default_of, inference_options, load_for_inference, positive_int,
                                    set_threads)
from pspnet_edu.data import CLASS_NAMES, NUM_CLASSES, CityscapesSegmentation, EvalTransforms
from pspnet_edu.files import check_writable, strict_json, write_atomic
from pspnet_edu.inference import evaluate
from pspnet_edu.training import TrainConfig
from pspnet_edu.training.trained_on import other_data_note, training_data


def format_scores(result: dict[str, Any], class_names: list[str]) -> str:
    """Per-class IoU table, pixel and mean accuracy, and a last line ``mIoU: 0.xxxx``."""
    lines = [f"{'class':<15}{'IoU':>8}"]
    for name, iou in zip(class_names, result["iou"]):
        lines.append(f"{name:<15}{iou:>8.4f}" if iou == iou else f"{name:<15}{'-':>8}  (absent)")
    lines += [f"pixel accuracy: {result['pixel_acc']:.4f}", f"mean accuracy: {result['mean_acc']:.4f}",
              f"mIoU: {result['miou']:.4f}"]
    return "\n".join(lines)


def _check_json_target(path: Path | None, force: bool) -> None:
    """Before the evaluation: the --json file must be writable and not overwrite one without --force."""
    if path is None:
        return
    if path.is_dir():
        raise IsADirectoryError(f"--json {path} is a folder; pass a file name such as {path / 'scores.json'}")
    if path.exists() and not force:
        raise FileExistsError(f"--json {path} already exists; pass --force to overwrite it or choose another file")
    check_writable(path.parent, f"--json {path}:")


def run(args: argparse.Namespace) -> int:
    set_threads(args)
    _check_json_target(args.json, args.force)
    model, saved = load_for_inference(args)
    if args.data is None:
        data = training_data(saved, args.checkpoint)
    else:
        data = args.data
        note = other_data_note(saved, data, args.checkpoint)
        if note:
            print(note, file=sys.stderr)
    dataset = CityscapesSegmentation(data, args.val_split, transforms=EvalTransforms())
    result = evaluate(model, dataset, num_classes=NUM_CLASSES, device=args.device, batch_size=args.batch_size,
                      **inference_options(args, saved))
    if args.json is not None:
        payload = {**result, "confusion_matrix": result["confusion_matrix"].tolist(), "class_names": list(CLASS_NAMES)}
        write_atomic(args.json, strict_json(payload, indent=1))  # absent classes: null, never a bare NaN
    print(format_scores(result, list(CLASS_NAMES)))
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register `evaluate`."""
    parser = subparsers.add_parser("evaluate", help="per-class IoU and mIoU of a checkpoint",
                                   description="Evaluate a checkpoint on a split; the last line is `mIoU: 0.xxxx`.")
    add_inference_options(parser)
    parser.add_argument("--data", default=None,
                        help="dataset folder (default: the data the checkpoint was trained on: the default Synthcity, "
                             "generated if absent, or the run's folder while it still holds the same data)")
    split, batch_size = TrainConfig().val_split, default_of(evaluate, "batch_size")
    parser.add_argument("--val-split", default=split,
                        help=f"split to score, a folder of DATA/leftImg8bit (default {split}; the same option as "
                             "train's --val-split)")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size,
                        help=f"images per forward pass (default {batch_size}); the scores do not depend on it")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the scores and the confusion matrix to this file")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    parser.set_defaults(func=run)
