"""A finished run as a small, committed model: slim weights plus a sidecar that says how it was made.

``pspnet-edu export --checkpoint RUN/last.pt --out data/checkpoints/NAME.pt`` writes
``NAME.pt`` (float16 weights, the config and the history: no optimiser state, so it cannot be
resumed) and ``NAME.json``: the val mIoU *of the exported file itself* (whole image, fp32, so
that ``pspnet-edu evaluate --checkpoint NAME.pt`` prints the same number), the per-class IoU,
the training command and recipe, the training time and a provenance record. The lessons use
the course's two such files, ``data/checkpoints/pspnet_tiny.pt`` and ``fcn_tiny.pt``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from pspnet_edu.constants import NUM_CLASSES
from pspnet_edu.data import CLASS_NAMES, CityscapesSegmentation, EvalTransforms
from pspnet_edu.provenance import provenance
from pspnet_edu.files import check_writable, strict_json, write_atomic
from pspnet_edu.inference import evaluate, prepare_for_inference
from pspnet_edu.training.checkpoint import export_weights, load_checkpoint, model_from_checkpoint
from pspnet_edu.training.trained_on import data_source, describe_source, moved_data, portable_config, training_data


def sidecar_path(out: str | Path) -> Path:
    """Where the sidecar of the weights ``out`` goes: ``out`` with the suffix ``.json``.

    A ValueError if that is ``out`` itself (a name ending in .json): the sidecar would be
    written over the weights.

    >>> sidecar_path("data/checkpoints/tiny.pt").as_posix()
    'data/checkpoints/tiny.json'
    """
    out = Path(out)
    if out.suffix.lower() == ".json":
        raise ValueError(f"the weights {out} would be overwritten by their own sidecar (the weights' name with "
                         f".json); name the weights {out.with_suffix('.pt')}")
    return out.with_suffix(".json")


def check_export_target(out: str | Path) -> None:
    """Before the work: ``out`` must be a file name whose folder takes files, and not collide with its sidecar."""
    out = Path(out)
    sidecar_path(out)
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder; pass a file name such as {out / 'model.pt'}")
    check_writable(out.parent, f"--out {out}:")


EXPORT_PRECISIONS = ("fp16", "fp32")  # the weights' storage: fp16 is half the size, and scores the same to five decimals (sidecar)


def export_run(checkpoint: str | Path, out: str | Path, precision: str = "fp16",
               data: str | Path | None = None) -> dict[str, Any]:
    """Write ``out`` (slim weights in ``precision``) and ``out.json`` (how it was made, what it scores); return the sidecar.

    Neither file names a folder of this machine: the data is described by its source
    (:mod:`pspnet_edu.training.trained_on`), so ``pspnet-edu evaluate --checkpoint out`` finds it
    on any machine. ``checkpoint`` may be a run's ``last.pt`` or an exported file (re-export).
    ``data``: where the run's training data is now, if it moved (e.g. a run trained with a
    relative ``--data`` path, exported from another folder); it must hold the same data.
    """
    if precision not in EXPORT_PRECISIONS:
        raise ValueError(f"precision must be one of {EXPORT_PRECISIONS}, got {precision!r}")
    source, out = Path(checkpoint), Path(out)
    check_export_target(out)
    saved = load_checkpoint(source)
    root = training_data(saved, str(source)) if data is None else moved_data(saved, data, str(source))
    described = saved.get("data_source") or data_source(root)
    run_json = (source.parent if source.is_file() else source) / "run.json"
    command = json.loads(run_json.read_text()).get("command") if run_json.is_file() else saved.get("training_command")
    half = precision == "fp16"
    export_weights(saved, out, half=half, config=portable_config(saved["config"], described), data_source=described,
                   training_command=command)
    model = prepare_for_inference(model_from_checkpoint(out))
    split = saved["config"].get("val_split") or "val"
    dataset = CityscapesSegmentation(root, split, transforms=EvalTransforms())
    scores = evaluate(model, dataset, num_classes=NUM_CLASSES)
    sidecar = {
        "val_miou": scores["miou"], "val_pixel_acc": scores["pixel_acc"],
        "iou": dict(zip(CLASS_NAMES, scores["iou"])),
        "evaluation": f"whole image, fp32, split {dataset.split!r} of {describe_source(described)}",
        "training_command": command, "iterations": saved.get("iteration"),
        "training_seconds": saved.get("seconds"), "recipe": portable_config(saved["config"], described),
        "weights": "float16" if half else "float32", "provenance": provenance(), "torch": torch.__version__,
    }
    write_atomic(sidecar_path(out), strict_json(sidecar, indent=1) + "\n")  # absent classes: null
    return sidecar
