"""What defines a training run: a frozen, typed ``TrainConfig`` with the model's ``PSPNetConfig`` inside.

The defaults follow the paper (Zhao et al. 2017, Sec. 5.1) where a laptop CPU allows it and
say where they depart from it. A config is saved inside every checkpoint as a plain dict
(:func:`config_to_dict`) and read back with :func:`config_from_dict`, which names any field
it does not know (what a checkpoint of another release looks like) instead of guessing.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from pspnet_edu.fields import type_problems
from pspnet_edu.loss import AUX_WEIGHT, CLASS_WEIGHTINGS
from pspnet_edu.pspnet import PRESETS, PSPNetConfig, model_config_from_dict

PRECISIONS = ("fp32", "bf16", "fp16")
# Changing these between an interrupted run and its resumption does not change the weights
# ("data" may move: the data itself is compared by its fingerprint, see training.checkpoint).
MAX_SEED = 2**63 - 1  # torch.manual_seed takes 64-bit seeds; sampling.sample_seed mixes them to 63 bits
RESUMABLE_CHANGES = frozenset({"device", "num_workers", "eval_every", "checkpoint_every", "out", "data"})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved in its checkpoint."""

    # --- the model: its architecture, typed (pspnet_edu.pspnet.PSPNetConfig) ---
    model: PSPNetConfig = PRESETS["tiny"]  # trains on a CPU in minutes; PRESETS["paper"] is the paper's
    # --- the data: a folder in the Cityscapes layout ---
    data: str = "data/synthcity"
    train_split: str = "train"
    val_split: str | None = "val"  # None: no evaluation
    crop: tuple[int, int] = (128, 256)  # (H, W) of the training crops; paper 713x713 on Cityscapes
    scale: tuple[float, float] = (0.5, 2.0)  # random resize range, paper Sec. 5.1
    # --- optimisation (paper Sec. 5.1 unless noted) ---
    iters: int = 500  # Deviation: the paper trains 90K iterations at batch 16 on Cityscapes
    batch_size: int = 8  # global batch, split over processes under torchrun; paper 16
    alpha: float = AUX_WEIGHT  # weight of the auxiliary loss: 0.4, paper Sec. 4 and Table 2 (pspnet_edu.loss)
    class_weighting: str = "none"  # the paper: "none"; else per-class loss weights from the training split (loss.CLASS_WEIGHTINGS)
    lr: float = 0.01  # base learning rate (backbone)
    head_lr_mult: float = 10.0  # PPM and heads at 10x the rate (hszhao/semseg)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    power: float = 0.9  # poly policy exponent
    seed: int = 0
    # --- the machine ---
    device: str = "cpu"  # explicit: "cpu", "cuda", "cuda:1", "mps"
    precision: str = "fp32"  # "bf16": autocast to bfloat16 (CPU, CUDA); "fp16": AMP + GradScaler (CUDA)
    channels_last: bool = True  # NHWC activations: faster convolutions on CPUs and recent GPUs (benchmarks/)
    num_workers: int = 0  # 0 on a small CPU: loader processes would compete with training for the cores
    # --- bookkeeping ---
    out: str = "runs/train"
    log_every: int = 10  # average the losses over this many iterations per history row
    eval_every: int = 0  # evaluate on val_split every N iterations; 0: only at the end
    checkpoint_every: int = 0  # save last.pt every N iterations; 0: only at the end or when stopped

    def __post_init__(self) -> None:
        for name in ("crop", "scale"):
            if isinstance(getattr(self, name), list):  # lists come back from a checkpoint
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("data", "out"):
            if isinstance(getattr(self, name), os.PathLike):  # saved as text: checkpoints hold no Path objects
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        if not isinstance(self.model, PSPNetConfig):
            raise ValueError(f"model must be a PSPNetConfig (e.g. PRESETS['tiny']), got {type(self.model).__name__}")
        for message in type_problems(self):  # first: the checks below compare values
            raise ValueError(message)
        for message in _problems(self):
            raise ValueError(message)


def _finite_positive(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _problems(c: TrainConfig) -> list[str]:
    """Every setting that cannot work, as a sentence that says what would."""
    checks = [
        (isinstance(c.iters, int) and c.iters > 0, f"iters must be a positive integer, got {c.iters}; e.g. 500"),
        (isinstance(c.batch_size, int) and c.batch_size > 0, f"batch_size must be a positive integer, got {c.batch_size}"),
        (math.isfinite(c.alpha) and c.alpha >= 0,
         f"alpha (the auxiliary loss weight) must be a finite number >= 0, got {c.alpha}; the paper uses 0.4"),
        (_finite_positive(c.lr), f"lr must be a finite positive number, got {c.lr}; the paper uses 0.01"),
        (_finite_positive(c.head_lr_mult), f"head_lr_mult must be a finite positive number, got {c.head_lr_mult}; "
                                           "hszhao/semseg uses 10"),
        (math.isfinite(c.momentum) and 0 <= c.momentum < 1, f"momentum must be in [0, 1), got {c.momentum}; e.g. 0.9"),
        (math.isfinite(c.weight_decay) and c.weight_decay >= 0, f"weight_decay must be >= 0, got {c.weight_decay}"),
        (_finite_positive(c.power), f"power must be a finite positive number, got {c.power}; the paper uses 0.9"),
        (0 <= c.seed <= MAX_SEED, f"seed must be an integer from 0 to {MAX_SEED} (2**63 - 1), got {c.seed}"),
        (c.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {c.precision!r}"),
        (c.class_weighting in CLASS_WEIGHTINGS,
         f"class_weighting must be one of {', '.join(CLASS_WEIGHTINGS)}, got {c.class_weighting!r}"),
        (len(c.crop) == 2 and all(isinstance(s, int) and s > 0 for s in c.crop),
         f"crop must be (H, W) with positive sides, got {c.crop}"),
        (len(c.scale) == 2 and all(_finite_positive(s) for s in c.scale) and c.scale[0] <= c.scale[1],
         f"scale must be (min, max) with 0 < min <= max, got {c.scale}; the paper uses 0.5 2.0"),
        (c.num_workers >= 0 and c.log_every > 0 and c.eval_every >= 0 and c.checkpoint_every >= 0,
         "num_workers, eval_every and checkpoint_every must be >= 0 and log_every > 0"),
    ]
    return [message for ok, message in checks if not ok]


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as plain values (the model as a nested dict), as checkpoints store it."""
    return dataclasses.asdict(config)


def config_from_dict(saved: dict[str, Any], where: str = "the checkpoint") -> TrainConfig:
    """Rebuild a ``TrainConfig`` from :func:`config_to_dict`'s output; unknown fields are an error.

    >>> config_from_dict(config_to_dict(TrainConfig(iters=7))) == TrainConfig(iters=7)
    True
    """
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(saved) - fields)
    if unknown:
        raise ValueError(f"{where} has training settings this release does not know ({', '.join(unknown)}): it was "
                         "written by another version of pspnet-edu; train a new run with this version")
    values = dict(saved)
    if "model" in values:
        values["model"] = model_config_from_dict(values["model"], where)
    try:
        return TrainConfig(**values)
    except ValueError as error:
        raise ValueError(f"{where} holds training settings that cannot be used ({error}); the file was edited or "
                         "damaged: re-train or pick another file") from None


def config_differences(saved: TrainConfig, current: TrainConfig, ignore: frozenset[str] = frozenset()) -> list[str]:
    """``"field: old -> new"`` for every setting (model fields included) that differs.

    >>> config_differences(TrainConfig(lr=0.01), TrainConfig(lr=0.02))
    ['lr: 0.01 -> 0.02']
    """
    return dict_differences(config_to_dict(saved), config_to_dict(current), ignore)


def dict_differences(old: dict[str, Any], new: dict[str, Any], ignore: frozenset[str] = frozenset()) -> list[str]:
    """``"key: old -> new"`` for every key (nested keys dotted) whose value differs between two config dicts.

    >>> dict_differences({"lr": 0.01, "model": {"bins": [1, 2]}}, {"lr": 0.01, "model": {"bins": [1]}})
    ['model.bins: (1, 2) -> (1,)']
    """
    old, new = _flat(old), _flat(new)
    keys = sorted((set(old) | set(new)) - ignore)
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = tuple(value) if isinstance(value, list) else value
    return flat
