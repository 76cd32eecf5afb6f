"""Checkpoints that lose nothing and load safely: ``last.pt`` of a run folder.

A checkpoint holds the weights, the optimiser, the schedule, every RNG state, the history and
the run's ``TrainConfig`` (with the model's ``PSPNetConfig`` inside), so that a run resumes
exactly and a model can be rebuilt from the file alone. It holds only tensors, numbers,
strings, lists and dicts, so it loads with ``torch.load(..., weights_only=True)``, which
refuses pickled code. It is written atomically (``pspnet_edu.files.write_atomic``).

Two formats load: ``pspnet-edu/train-v2`` (this release) and ``pspnet-edu/train-v1`` (the
first release: its ``model_config`` rebuilds the model for evaluation and prediction; it
cannot be resumed by this release).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pspnet_edu.files import check_no_link_loop, write_atomic
from pspnet_edu.pspnet import PSPNet, PSPNetConfig, model_config_from_dict
from pspnet_edu.training.config import TrainConfig, config_from_dict

CHECKPOINT_NAME = "last.pt"
CHECKPOINT_FORMAT = "pspnet-edu/train-v2"
OLD_FORMAT = "pspnet-edu/train-v1"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a reader never sees a half-written file."""
    write_atomic(path, lambda file: torch.save(state, file))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training checkpoint safely (``weights_only=True``) with errors that say what to do.

    ``path`` is a ``last.pt`` file or the run folder holding one.
    """
    path = Path(path)
    check_no_link_loop(path, "checkpoint")
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; train first (pspnet-edu train --out DIR) "
                                f"and pass DIR/{CHECKPOINT_NAME}")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes: a full disk or an interrupted copy); "
                         "copy it again or re-train")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: torch raises many types
        raise ValueError(_unreadable(path, error)) from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise ValueError(f"{path} is not a pspnet-edu training checkpoint (no 'model' weights); "
                         "released semseg weights go through pspnet_edu.convert first")
    if checkpoint.get("format") not in (CHECKPOINT_FORMAT, OLD_FORMAT):
        raise ValueError(f"{path} has checkpoint format {checkpoint.get('format')!r}, which this release does not "
                         f"read ({CHECKPOINT_FORMAT} or {OLD_FORMAT}); use the pspnet-edu version that wrote it")
    return checkpoint


_PICKLED_CLASS = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _unreadable(path: Path, error: Exception) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in one sentence with what to do.

    torch's own message for a pickled object is a page long (with terminal colour codes)
    and advises ``weights_only=False``, which would run whatever code the file holds.
    """
    pickled = _PICKLED_CLASS.search(str(error))
    if pickled:
        return (f"checkpoint {path} holds a pickled Python object ({pickled.group(1)}), e.g. a whole model saved with "
                "torch.save(model), and is not loaded: unpickling could run any code. Save the weights instead "
                "(torch.save({'model': model.state_dict(), ...}); pspnet-edu train writes such checkpoints) or pick "
                "another file")
    detail = (str(error).strip().splitlines() or [""])[0][:120]
    return (f"checkpoint {path} is corrupt or not a PyTorch file ({type(error).__name__}"
            f"{': ' + detail if detail else ''}); re-train or pick another file")


def saved_config(checkpoint: dict[str, Any], where: str = "the checkpoint") -> TrainConfig:
    """The ``TrainConfig`` a v2 checkpoint was trained with (v1 checkpoints cannot say it)."""
    if checkpoint.get("format") == OLD_FORMAT:
        raise ValueError(f"{where} was written by the first release of pspnet-edu (format {OLD_FORMAT}); this "
                         "release can evaluate it and predict with it, but not resume it: start a new run")
    if not isinstance(checkpoint.get("config"), dict):
        raise ValueError(f"{where} holds no training configuration ('config'); it was not written by pspnet-edu train")
    return config_from_dict(checkpoint["config"], where)


def saved_model_config(checkpoint: dict[str, Any], where: str = "the checkpoint") -> PSPNetConfig:
    """The architecture of the saved model, from either format."""
    if checkpoint.get("format") == OLD_FORMAT:
        return model_config_from_dict(checkpoint.get("model_config"), where)
    return saved_config(checkpoint, where).model


def export_weights(checkpoint: dict[str, Any], path: str | Path, half: bool = True, **replace: Any) -> Path:
    """Write a slim copy of a training checkpoint: weights (float16 if ``half``), config, history.

    What the course commits as ``data/checkpoints/NAME.pt``: no optimiser or RNG state (it
    cannot be resumed), a quarter of the size. :func:`model_from_checkpoint` loads it (the
    float16 weights are copied into a float32 model). ``replace`` sets entries of the slim
    file (``training.export`` gives a portable ``config``, the ``data_source`` and the
    ``training_command``).
    """
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in checkpoint["model"].items()}
    kept = ("config", "history", "data_id", "data_source", "training_command", "iteration", "seconds")
    slim = {"format": CHECKPOINT_FORMAT, "model": weights, **{k: checkpoint.get(k) for k in kept}, **replace}
    if checkpoint.get("format") == OLD_FORMAT:
        slim.update(format=OLD_FORMAT, model_config=checkpoint["model_config"])
    save_checkpoint(path, slim)
    return Path(path)


def model_from_checkpoint(checkpoint: str | Path | dict[str, Any], device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved in a checkpoint (its architecture is stored with it), in eval mode."""
    where = str(checkpoint) if not isinstance(checkpoint, dict) else "the checkpoint"
    if not isinstance(checkpoint, dict):
        checkpoint = load_checkpoint(checkpoint)
    model = PSPNet(saved_model_config(checkpoint, where))
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        first = str(error).strip().splitlines()[1:2] or [str(error)[:200]]
        raise ValueError(f"the weights in {where} do not fit the model its configuration describes "
                         f"({first[0].strip()[:200]}); the file was edited or mixed up: re-train") from None
    return model.to(device).eval()
