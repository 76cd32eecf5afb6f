"""Training PSPNet: SGD, the poly policy, the auxiliary loss, and checkpoints that lose nothing.

What the paper prescribes (Zhao et al. 2017, Sec. 4.1) and the author's code does
(hszhao/semseg ``tool/train.py``):

- SGD with momentum 0.9 and weight decay 1e-4; base learning rate 0.01 with the PPM and the
  heads at 10x the backbone's rate (parameter groups picked by module name);
- the poly policy ``lr = base_lr * (1 - iter / max_iter) ** 0.9``, updated after every step
  (``torch.optim.lr_scheduler.PolynomialLR``; see ``pspnet_edu.schedule``);
- loss = main + alpha x auxiliary, alpha = 0.4 (paper Table 2; ``pspnet_edu.loss``);
- random scale 0.5-2 and mirror (``pspnet_edu.data.transforms``); BatchNorm statistics over
  the global batch (SyncBatchNorm under ``torchrun`` on CUDA).

What a trainer needs beyond the paper, and this one does:

- the device is explicit (``"cpu"``, ``"cuda"``, ``"mps"``); optional bf16 autocast (CPU or
  CUDA) or fp16 AMP with a GradScaler (CUDA); channels_last on request;
- every source of randomness is seeded: the model's initialisation from ``seed``; the order
  of the training images from ``(seed, epoch)`` (a ``DistributedSampler``); the augmentation
  of each image from ``(seed, epoch, index)``; dropout from the global torch RNG, whose state
  is saved. So an interrupted run resumed from its checkpoint ends with exactly the weights of
  an uninterrupted run (on the CPU), whatever the number of data-loading workers;
- ``last.pt`` is written atomically (a temporary file, then ``os.replace``) and holds only
  tensors, numbers, strings, lists and dicts, so it loads with ``torch.load(...,
  weights_only=True)``;
- Ctrl-C or SIGTERM finishes the current step, saves, and returns; a NaN or infinite loss
  stops the run before it damages the weights and keeps the last good checkpoint;
- under ``torchrun --nproc_per_node=N`` the same code runs with DistributedDataParallel, each
  process reads its own shard of every epoch, and only rank 0 writes files or prints.

The trainer knows one thing about the model: parameters whose name starts with
``backbone.`` are the pretrained-style backbone; everything else is new and gets 10x the rate.

Deviation: the paper counts 90K iterations at batch 16 on Cityscapes; the course's default
is a few hundred at batch 8 on small synthetic images, so that it runs on a laptop CPU.
Deviation: PyTorch's SyncBatchNorm supports only GPUs, so on the CPU each process normalises
with its own batch and DDP broadcasts rank 0's running statistics.

Taught in ``notebooks/07_training.ipynb``; ``notebooks/10_scaling_up.ipynb`` runs it under
``torchrun``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import random
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pspnet_edu.data.labels import CLASS_NAMES, IGNORE_INDEX
from pspnet_edu.inference import evaluate
from pspnet_edu.loss import pspnet_loss

CHECKPOINT_NAME = "last.pt"
CHECKPOINT_FORMAT = "pspnet-edu/train-v1"
# Changing these between an interrupted run and its resumption does not change the weights.
RESUMABLE_CHANGES = frozenset({"device", "num_workers", "eval_every", "checkpoint_every", "out", "data"})
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved in the checkpoint as ``asdict(config)``."""

    # --- the model (pspnet_edu.pspnet.build_pspnet) ---
    preset: str = "tiny"
    num_classes: int = 19  # Cityscapes trainIds
    overrides: dict[str, Any] = field(default_factory=dict)  # PSPNetConfig fields, e.g. {"use_ppm": False}
    # --- the data (a folder in the Cityscapes layout) ---
    data: str = "data/synthcity"
    train_split: str = "train"
    val_split: str | None = "val"  # None: no evaluation
    crop: tuple[int, int] = (128, 256)  # (H, W) of the training crops; paper 713x713 on Cityscapes
    scale: tuple[float, float] = (0.5, 2.0)  # random resize range, paper Sec. 4.1
    # --- optimisation (paper Sec. 4.1 unless noted) ---
    iters: int = 500
    batch_size: int = 8  # global batch, split over processes under torchrun; paper 16
    alpha: float = 0.4  # weight of the auxiliary loss, paper Table 2
    lr: float = 0.01  # base learning rate (backbone)
    head_lr_mult: float = 10.0  # PPM and heads at 10x the rate (hszhao/semseg)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    power: float = 0.9  # poly policy exponent
    seed: int = 0
    # --- the machine ---
    device: str = "cpu"  # explicit: "cpu", "cuda", "cuda:1", "mps"
    precision: str = "fp32"  # "bf16": autocast to bfloat16 (CPU, CUDA); "fp16": AMP + GradScaler (CUDA)
    channels_last: bool = False  # faster convolutions on recent GPUs
    num_workers: int = 0  # 0 on a small CPU: loader processes would compete with training for cores
    # --- bookkeeping ---
    out: str = "runs/train"
    log_every: int = 10  # average the losses over this many iterations per history row
    eval_every: int = 0  # evaluate on val_split every N iterations; 0: only at the end
    checkpoint_every: int = 0  # save last.pt every N iterations; 0: only at the end or when stopped

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop", tuple(self.crop))
        object.__setattr__(self, "scale", tuple(self.scale))
        object.__setattr__(self, "overrides", dict(self.overrides))
        problems = [
            (self.iters > 0, f"iters must be positive, got {self.iters}; pass e.g. --iters 500"),
            (self.batch_size > 0, f"batch_size must be positive, got {self.batch_size}"),
            (self.alpha >= 0, f"alpha (the auxiliary loss weight) must be >= 0, got {self.alpha}; the paper uses 0.4"),
            (self.lr > 0, f"lr must be positive, got {self.lr}; the paper uses 0.01"),
            (self.head_lr_mult > 0, f"head_lr_mult must be positive, got {self.head_lr_mult}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}"),
            (len(self.crop) == 2 and min(self.crop) > 0, f"crop must be (H, W) with positive sides, got {self.crop}"),
            (len(self.scale) == 2 and 0 < self.scale[0] <= self.scale[1], f"scale must be (min, max) with 0 < min <= max, got {self.scale}"),
            (self.num_workers >= 0 and self.log_every > 0 and self.eval_every >= 0 and self.checkpoint_every >= 0,
             "num_workers, eval_every and checkpoint_every must be >= 0 and log_every > 0"),
        ]
        for ok, message in problems:
            if not ok:
                raise ValueError(message)


@dataclass
class TrainResult:
    """What ``train`` returns: where the run lives, how far it got, and its metrics."""

    run_dir: Path
    checkpoint: Path
    iteration: int
    interrupted: bool  # stopped by Ctrl-C / SIGTERM before the last iteration
    history: dict[str, list[dict[str, Any]]]  # {"train": [...], "val": [...]}
    final: dict[str, Any] | None  # the last evaluation (miou, pixel_acc, mean_acc, iou), if any
    model: nn.Module  # the trained model (unwrapped from DDP), on the training device


# --------------------------------------------------------------------------- optimiser


def param_groups(model: nn.Module, lr: float, head_lr_mult: float = 10.0) -> list[dict[str, Any]]:
    """Two SGD groups by module name: ``backbone.*`` at ``lr``, everything else at ``head_lr_mult * lr``.

    The assertion makes sure every trainable parameter is in exactly one group (groups picked
    by list position silently miss parameters when a model changes).
    """
    backbone, rest = [], []
    names = {"backbone": [], "rest": []}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        is_backbone = name.startswith("backbone.")
        (backbone if is_backbone else rest).append(parameter)
        names["backbone" if is_backbone else "rest"].append(name)
    trainable = [p for p in model.parameters() if p.requires_grad]
    grouped = backbone + rest
    assert len(grouped) == len(trainable) and {id(p) for p in grouped} == {id(p) for p in trainable}, \
        "every trainable parameter must be in exactly one optimizer group"
    groups = [{"params": backbone, "lr": lr, "name": "backbone"},
              {"params": rest, "lr": lr * head_lr_mult, "name": "head"}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, config: TrainConfig) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.PolynomialLR]:
    """SGD over the two groups, and the poly schedule stepped once per iteration."""
    optimizer = torch.optim.SGD(param_groups(model, config.lr, config.head_lr_mult), lr=config.lr,
                                momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=config.iters, power=config.power)
    return optimizer, scheduler


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training checkpoint safely (``weights_only=True``) with errors that say what to do."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; train first (pspnet-edu train --out DIR) "
                                f"and pass DIR/{CHECKPOINT_NAME}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: torch raises many types
        raise ValueError(f"checkpoint {path} is corrupt or not a PyTorch file ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:120]}); re-train or pick another file") from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "model_config" not in checkpoint:
        raise ValueError(f"{path} is not a pspnet-edu training checkpoint (no 'model' / 'model_config'); "
                         "released semseg weights go through pspnet_edu.convert first")
    return checkpoint


def model_from_checkpoint(checkpoint: str | Path | dict[str, Any], device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved in a checkpoint (its config is stored with it) and load its weights."""
    from pspnet_edu.pspnet import PSPNet, PSPNetConfig

    if not isinstance(checkpoint, dict):
        checkpoint = load_checkpoint(checkpoint)
    if checkpoint["model_config"] is None:
        raise ValueError("this checkpoint holds a model without a PSPNetConfig; rebuild the model yourself "
                         "and load checkpoint['model'] into it")
    model = PSPNet(PSPNetConfig(**checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


def _config_differences(saved: dict[str, Any], current: dict[str, Any], ignore: frozenset[str] = frozenset()) -> list[str]:
    def norm(value: Any) -> Any:  # tuples and lists compare equal after a round trip
        return list(value) if isinstance(value, tuple) else value

    keys = sorted((set(saved) | set(current)) - ignore)
    return [f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in keys if norm(saved.get(k)) != norm(current.get(k))]


def _rng_state() -> dict[str, Any]:
    """Every RNG state, as tensors and plain Python values (safe for weights_only loading)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": list(random.getstate()[1]) + [random.getstate()[0]],
        "python_gauss": random.getstate()[2],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    python = state["python"]
    random.setstate((python[-1], tuple(python[:-1]), state["python_gauss"]))


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), numpy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# --------------------------------------------------------------------------- data


def _sample_seed(*numbers: int) -> int:
    """A well-mixed 63-bit seed from a few integers (numpy's SeedSequence, no collisions in practice)."""
    return int(np.random.SeedSequence([n % 2**63 for n in numbers]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class SeededSamples(torch.utils.data.Dataset):
    """Wraps a dataset so that the augmentation of image ``index`` in ``epoch`` depends only on
    ``(seed, epoch, index)``: the same crops and flips whichever process or worker loads it,
    and whenever (so a resumed run sees exactly the images an uninterrupted run would)."""

    def __init__(self, dataset: torch.utils.data.Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        sample_seed = _sample_seed(self.seed, epoch, index)
        python_state, numpy_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):  # the caller's torch RNG is left untouched
            torch.manual_seed(sample_seed)
            random.seed(sample_seed)
            np.random.seed(sample_seed % 2**32)
            try:
                return self.dataset[index]
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)


class EndlessBatches(torch.utils.data.Sampler):
    """Endless batches of ``(epoch, index)`` keys for this process, starting at batch ``start``.

    Epoch ``e`` visits the images in the order of a ``DistributedSampler`` at ``set_epoch(e)``
    (a permutation seeded with ``seed + e``, split into one shard per process); batch ``b`` of
    the run is batch ``b % per_epoch`` of epoch ``b // per_epoch``. Incomplete batches at the
    end of an epoch are dropped, as in semseg (``drop_last=True``).
    """

    def __init__(self, dataset_size: int, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1,
                 start: int = 0) -> None:
        self.sampler = torch.utils.data.DistributedSampler(
            range(dataset_size), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.per_epoch = len(self.sampler) // batch_size
        if self.per_epoch == 0:
            raise ValueError(f"the training set has {dataset_size} images, fewer than one batch of {batch_size} "
                             f"per process ({world_size} process(es)); lower --batch-size or add images")
        self.start = start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batch = self.start
        epoch, order = -1, []
        while True:
            if batch // self.per_epoch != epoch:
                epoch = batch // self.per_epoch
                self.sampler.set_epoch(epoch)
                order = list(self.sampler)
            position = batch % self.per_epoch
            yield [(epoch, i) for i in order[position * self.batch_size:(position + 1) * self.batch_size]]
            batch += 1


def build_datasets(config: TrainConfig) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset | None]:
    """The training set (with the paper's augmentation) and the validation set from ``config.data``."""
    from pspnet_edu.data import CityscapesSegmentation
    from pspnet_edu.data.transforms import EvalTransforms, TrainTransforms

    root = Path(config.data)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist; generate the synthetic set with "
                                "`pspnet-edu data synthetic` or pass --data DIR (a folder in the Cityscapes layout)")
    train_set = CityscapesSegmentation(root, config.train_split,
                                       transforms=TrainTransforms(crop_size=config.crop, scale=config.scale))
    if len(train_set) == 0:
        raise ValueError(f"no training images in {root} (split {config.train_split!r}); expected "
                         f"leftImg8bit/{config.train_split}/CITY/*_leftImg8bit.png with gtFine labels")
    val_set = None
    if config.val_split:
        val_set = CityscapesSegmentation(root, config.val_split, transforms=EvalTransforms())
        if len(val_set) == 0:
            raise ValueError(f"no validation images in {root} (split {config.val_split!r}); add them or "
                             "disable evaluation (val_split=None)")
    return train_set, val_set


# --------------------------------------------------------------------------- the run


class NonFiniteLossError(ValueError):
    """The loss became NaN or infinite: the run diverged (usually a learning rate too high)."""


@dataclass
class _Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    initialised_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device: str) -> _Distributed:
    """Join the process group when launched by torchrun (RANK and WORLD_SIZE are set)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Distributed()
    import torch.distributed as dist

    info = _Distributed(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                        world_size=world_size)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        info.initialised_here = True
    return info


def _resolve_device(name: str, dist_info: _Distributed) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("CUDA was requested but is not available on this machine; use --device cpu")
        if dist_info.enabled:
            device = torch.device("cuda", dist_info.local_rank)  # one GPU per process
        torch.cuda.set_device(device)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("MPS was requested but is not available on this machine; use --device cpu")
    return device


class _StopFlag:
    """Catch Ctrl-C / SIGTERM: the first asks the loop to stop after the current step, a second
    Ctrl-C interrupts at once. Handlers are restored on exit."""

    def __init__(self, announce: Callable[[str], None]) -> None:
        self.requested = False
        self.signal_name = ""
        self._announce = announce
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        self._announce(f"{self.signal_name}: finishing this step, saving the checkpoint, then stopping "
                       "(Ctrl-C again to abort without saving)")

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _write_history(run_dir: Path, history: dict[str, list[dict[str, Any]]], class_names: list[str] | None) -> None:
    """history.json (everything) and history.csv (one row per logged iteration), both atomic."""
    def clean(value: Any) -> Any:  # strict JSON has no NaN: absent classes become null
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    write_atomic(run_dir / "history.json",
                       json.dumps(clean({**history, "class_names": class_names}), indent=1))
    rows: dict[int, dict[str, Any]] = {}
    for row in history["train"]:
        rows.setdefault(row["iteration"], {}).update(row)
    for row in history["val"]:
        rows.setdefault(row["iteration"], {"iteration": row["iteration"]}).update(
            {f"val_{k}": v for k, v in row.items() if k not in ("iteration", "iou")})
    columns = ["iteration", "lr", "loss", "loss_main", "loss_aux", "val_miou", "val_pixel_acc", "val_mean_acc"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for iteration in sorted(rows):
        writer.writerow(rows[iteration])
    write_atomic(run_dir / "history.csv", buffer.getvalue())


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write a file so that it is either the old or the new version, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    model: nn.Module | None = None,
    train_set: torch.utils.data.Dataset | None = None,
    val_set: torch.utils.data.Dataset | None = None,
    on_step: Callable[[int], None] | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train (or resume) a run described by ``config``; write ``config.out/last.pt`` and the history.

    ``model``, ``train_set`` and ``val_set`` default to ``build_pspnet(config.preset, ...)`` and
    the Cityscapes-layout folder ``config.data``; pass your own to train something else (the
    model must return ``{"out": ..., "aux": ...}``; datasets yield ``(image, mask)``).
    ``on_step(iteration)`` is called after every step (tests use it to send themselves a
    signal). ``progress=None`` shows a tqdm bar only on an interactive terminal and when
    ``TQDM_DISABLE`` is not set.
    """
    from tqdm import tqdm  # plain text bar: no ipywidgets warning in notebooks

    dist_info = _setup_distributed(config.device)
    try:
        device = _resolve_device(config.device, dist_info)
        if config.precision == "fp16" and device.type != "cuda":
            raise ValueError("fp16 AMP needs CUDA; on the CPU use --precision bf16")
        if config.batch_size % dist_info.world_size:
            raise ValueError(f"batch size {config.batch_size} is not divisible by the {dist_info.world_size} "
                             "processes; the batch size is global (the paper's 16 over all GPUs)")
        run_dir = Path(config.out)
        checkpoint_path = run_dir / CHECKPOINT_NAME
        say = (lambda message: print(message, flush=True)) if dist_info.is_main else (lambda message: None)

        saved = None
        if resume:
            if not checkpoint_path.is_file():
                raise FileNotFoundError(f"nothing to resume: {checkpoint_path} does not exist; "
                                        "drop --resume to start a new run")
            saved = load_checkpoint(checkpoint_path)
            differences = _config_differences(saved["config"], dataclasses.asdict(config), RESUMABLE_CHANGES)
            if differences:
                raise ValueError(f"{checkpoint_path} was trained with other settings ({'; '.join(differences)}); "
                                 "resume with the same settings, or start a new run with another --out")
        elif checkpoint_path.exists():
            raise FileExistsError(f"{checkpoint_path} already exists; pass --resume to continue that run, "
                                  "or choose another --out (or delete the folder)")

        if train_set is None:
            built_train, built_val = build_datasets(config)
            train_set = built_train
            val_set = built_val if val_set is None else val_set
        if len(train_set) == 0:  # type: ignore[arg-type]
            raise ValueError("the training set is empty; check --data")

        seed_everything(config.seed)
        if model is None:
            from pspnet_edu.pspnet import build_pspnet

            model = build_pspnet(config.preset, num_classes=config.num_classes, **config.overrides)
        model_config = dataclasses.asdict(model.config) if dataclasses.is_dataclass(getattr(model, "config", None)) else None
        if dist_info.enabled and device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # BN statistics over the global batch
        model = model.to(device)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer, scheduler = build_optimizer(model, config)
        scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")

        iteration = 0
        history: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
        window = {"loss": 0.0, "loss_main": 0.0, "loss_aux": 0.0, "count": 0}
        if saved is not None:
            if saved["model_config"] != model_config:
                raise ValueError(f"{checkpoint_path} holds another model ("
                                 f"{'; '.join(_config_differences(saved['model_config'] or {}, model_config or {}))}); "
                                 "resume with the same --preset and model options")
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            if saved["scaler"]:
                scaler.load_state_dict(saved["scaler"])
            iteration, history, window = saved["iteration"], saved["history"], saved["window"]
            _set_rng_state(saved["rng"])
            say(f"resuming {checkpoint_path} at iteration {iteration}/{config.iters}")

        start_iteration = iteration
        net: nn.Module = model
        if dist_info.enabled:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=config.alpha == 0)  # alpha 0: the aux head gets no gradient

        per_process_batch = config.batch_size // dist_info.world_size
        batches = EndlessBatches(len(train_set), per_process_batch, seed=config.seed,  # type: ignore[arg-type]
                                 rank=dist_info.rank, world_size=dist_info.world_size, start=iteration)
        loader = torch.utils.data.DataLoader(
            SeededSamples(train_set, config.seed), batch_sampler=batches, num_workers=config.num_workers,
            pin_memory=device.type == "cuda", persistent_workers=False,
            generator=torch.Generator().manual_seed(config.seed))  # not the global RNG: see SeededSamples
        class_names = list(CLASS_NAMES) if config.num_classes == len(CLASS_NAMES) else None

        def state() -> dict[str, Any]:
            return {"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                    "iteration": iteration, "epoch": iteration // batches.per_epoch,
                    "position_in_epoch": iteration % batches.per_epoch, "config": dataclasses.asdict(config),
                    "model_config": model_config, "rng": _rng_state(), "history": history, "window": window,
                    "world_size": dist_info.world_size}

        def run_evaluation() -> dict[str, Any] | None:
            if val_set is None or not dist_info.is_main:
                return None
            metrics = evaluate(model, val_set, num_classes=config.num_classes, device=device,
                               batch_size=per_process_batch, num_workers=config.num_workers)
            row = {"iteration": iteration, "miou": metrics["miou"], "pixel_acc": metrics["pixel_acc"],
                   "mean_acc": metrics["mean_acc"], "iou": metrics["iou"]}
            history["val"].append(row)
            say(f"iteration {iteration}: val mIoU {metrics['miou']:.4f}, pixel acc {metrics['pixel_acc']:.4f}")
            return row

        def save() -> None:
            if dist_info.is_main:
                save_checkpoint(checkpoint_path, state())
                _write_history(run_dir, history, class_names)

        if dist_info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        show_bar = progress if progress is not None else (sys.stderr.isatty() and not os.environ.get("TQDM_DISABLE"))
        print_every = max(config.log_every, config.iters // 10)
        autocast = torch.autocast(device.type, dtype=torch.float16 if config.precision == "fp16" else torch.bfloat16,
                                  enabled=config.precision != "fp32")
        interrupted = False
        net.train()
        with _StopFlag(say) as stop, tqdm(total=config.iters, initial=iteration, desc="train", unit="it",
                                          disable=not (show_bar and dist_info.is_main), dynamic_ncols=True) as bar:
            data = iter(loader)
            while iteration < config.iters:
                images, masks = next(data)
                images = images.to(device, non_blocking=True)  # (B, 3, H, W)
                masks = masks.to(device, non_blocking=True)  # (B, H, W)
                if config.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                with autocast:
                    outputs = net(images)
                loss, parts = pspnet_loss({k: v.float() for k, v in outputs.items()}, masks,
                                          aux_weight=config.alpha, ignore_index=IGNORE_INDEX)
                if not _all_finite(loss, dist_info):
                    save_history = history["train"] + [{"iteration": iteration + 1, "loss": float(loss.detach())}]
                    if dist_info.is_main:
                        _write_history(run_dir, {**history, "train": save_history}, class_names)
                    kept = (f"the last good checkpoint {checkpoint_path} was kept"
                            if checkpoint_path.exists() else "no checkpoint had been saved yet")
                    raise NonFiniteLossError(
                        f"the loss became {float(loss.detach())} at iteration {iteration + 1} "
                        f"(lr {optimizer.param_groups[0]['lr']:.3g}); the run diverged and was stopped before "
                        f"the update, {kept}. Lower the learning rate (e.g. --lr {config.lr / 10:g}) and start again")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()  # poly: lr = base * (1 - iteration / iters) ** power
                iteration += 1

                window["loss"] += float(loss.detach())
                window["loss_main"] += float(parts["main"])
                window["loss_aux"] += float(parts.get("aux", 0.0))
                window["count"] += 1
                if iteration % config.log_every == 0 or iteration == config.iters:
                    row = {"iteration": iteration, "lr": optimizer.param_groups[0]["lr"]}
                    row.update({k: window[k] / window["count"] for k in ("loss", "loss_main", "loss_aux")})
                    history["train"].append(row)
                    window = {"loss": 0.0, "loss_main": 0.0, "loss_aux": 0.0, "count": 0}
                    bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}")
                    if not show_bar and (iteration % print_every == 0 or iteration == config.iters):
                        say(f"iteration {iteration}/{config.iters}: loss {row['loss']:.4f} "
                            f"(main {row['loss_main']:.4f}, aux {row['loss_aux']:.4f}), lr {row['lr']:.2e}")
                bar.update(1)
                if config.eval_every and iteration % config.eval_every == 0 and iteration < config.iters:
                    run_evaluation()
                if on_step is not None:
                    on_step(iteration)
                if iteration < config.iters and _any_rank(stop.requested, dist_info):
                    interrupted = True
                    save()
                    say(f"stopped at iteration {iteration}/{config.iters}; checkpoint saved to {checkpoint_path}; "
                        "continue with --resume")
                    break
                if config.checkpoint_every and iteration % config.checkpoint_every == 0 and iteration < config.iters:
                    save()
        if not interrupted:
            evaluated = not history["val"] or history["val"][-1]["iteration"] != iteration
            if evaluated:
                run_evaluation()  # the final evaluation (also when resuming a run that had finished)
            if evaluated or iteration != start_iteration:
                save()  # a finished run that is only read back stays untouched
        final = history["val"][-1] if history["val"] else None
        if dist_info.enabled:
            import torch.distributed as dist

            dist.barrier()
        return TrainResult(run_dir=run_dir, checkpoint=checkpoint_path, iteration=iteration, interrupted=interrupted,
                           history=history, final=final, model=model)
    finally:
        if dist_info.initialised_here:
            import torch.distributed as dist

            dist.destroy_process_group()


def _all_finite(loss: Tensor, dist_info: _Distributed) -> bool:
    finite = torch.isfinite(loss.detach()).to(torch.float32).reshape(1)
    if dist_info.enabled:  # every process must agree, or they would deadlock
        import torch.distributed as dist

        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())


def _any_rank(flag: bool, dist_info: _Distributed) -> bool:
    if not dist_info.enabled:
        return flag
    import torch.distributed as dist

    tensor = torch.tensor([1.0 if flag else 0.0], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())
