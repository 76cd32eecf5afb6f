"""The training loop: the paper's recipe, step by step (Zhao et al. 2017, Sec. 4 and 5.1).

Every iteration of :func:`train` draws a batch of augmented crops (random scale and mirror,
``pspnet_edu.data.transforms``) and runs :func:`pspnet_edu.training.step.train_step`, the
paper's step and nothing else: the logits ``{"out": ..., "aux": ...}``, the loss
``main + alpha * aux``, SGD with momentum over two parameter groups (backbone 1x, PPM and heads
10x), then one step of the poly schedule. ``training.step`` says where each value is defined.

Around it, what a trainer needs beyond the paper: an explicit device; bf16 autocast (CPU or
CUDA) or fp16 AMP (CUDA); channels_last activations; freed memory kept for the next step
(``training.memory``); exact resume (``training.sampling``);
atomic checkpoints (``training.checkpoint``); a run folder that is locked and checked
before the work starts (``training.runfolder``); Ctrl-C / SIGTERM that save and stop
(``training.stop``); the steps done saved whatever error stops the run (a corrupt label, an
evaluation out of memory); a NaN loss that stops the run before its weights are saved; batches
without a labelled pixel skipped rather than taken for a diverged run; and
DistributedDataParallel under ``torchrun`` (``training.distributed``).

The model is passed in (``training.setup.build_model`` builds the one a config describes);
the trainer knows one thing about it: parameter names starting with ``backbone.`` are the
backbone.

Taught in ``notebooks/07_training.ipynb``; ``notebooks/10_scaling_up.ipynb`` runs it under
``torchrun``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
from torch import Tensor, nn
from tqdm import tqdm

from pspnet_edu.constants import IGNORE_INDEX
from pspnet_edu.data.frequencies import class_frequencies
from pspnet_edu.inference import evaluate, prepare_for_inference
from pspnet_edu.loss import class_weights
from pspnet_edu.training import distributed
from pspnet_edu.training.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint, saved_config
from pspnet_edu.training.config import RESUMABLE_CHANGES, TrainConfig, config_differences, config_to_dict
from pspnet_edu.training.history import TrainLog, write_history
from pspnet_edu.training.memory import keep_freed_memory
from pspnet_edu.training.optim import build_optimizer
from pspnet_edu.training.runfolder import RunFolder
from pspnet_edu.training.sampling import GLOBAL_RNG_LOCK, make_loader, rng_state, seed_everything, set_rng_state
from pspnet_edu.training.step import train_step
from pspnet_edu.training.stop import StopFlag


class NonFiniteLossError(ValueError):
    """The loss became NaN or infinite: the run diverged (usually a learning rate too high)."""


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
    seconds: float  # wall-clock time of the training loop, over all its resumptions


@dataclass
class _Run:
    """The objects of one run that the loop updates together (and saves in the checkpoint)."""

    config: TrainConfig
    model: nn.Module  # the model itself; `net` is the same under DDP's wrapper
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    log: TrainLog
    device: torch.device
    folder: RunFolder
    val_set: torch.utils.data.Dataset | None
    dist: distributed.Distributed
    data_id: str | None
    class_names: list[str] | None
    class_weights: Tensor | None = None  # config.class_weighting's loss weights, from the training split
    iteration: int = 0
    seconds: float = 0.0  # time spent in the loop before this process started it (resumed runs)
    started: float = 0.0  # time.perf_counter() when this process started the loop

    def say(self, message: str) -> None:
        if self.dist.is_main:
            print(message, flush=True)

    def state(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                "iteration": self.iteration, "config": config_to_dict(self.config), "data_id": self.data_id,
                "seconds": self.elapsed(), "rng": rng_state(), **self.log.state(),
                "class_weights": None if self.class_weights is None else self.class_weights.tolist()}

    def elapsed(self) -> float:
        return self.seconds + (time.perf_counter() - self.started if self.started else 0.0)

    def save(self) -> None:
        if self.dist.is_main:
            self.folder.start()  # --force: the previous run is replaced only now
            save_checkpoint(self.folder.checkpoint, self.state())
            write_history(self.folder.path, self.log, self.class_names)


def train(
    config: TrainConfig,
    model: nn.Module,
    train_set: torch.utils.data.Dataset,
    val_set: torch.utils.data.Dataset | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    data_id: str | None = None,
    class_names: Sequence[str] | None = None,
    on_step: Callable[[int], None] | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``model`` (or resume its run) as ``config`` says; write ``config.out/last.pt`` and the history.

    ``model`` maps images to ``{"out": ..., "aux": ...}`` logits (build it with
    ``training.setup.build_model(config)``); datasets yield ``(image, mask)``. ``resume``
    continues the run in ``config.out``; ``force`` starts it again from scratch. ``data_id``
    identifies the data (e.g. its manifest's checksum): a resumed run must see the same.
    ``class_names`` label the IoUs in ``history.json``. ``on_step(iteration)`` is called after
    every step (tests send themselves signals from it). ``progress=None`` shows a tqdm bar only
    on an interactive terminal and when ``TQDM_DISABLE`` is not set.
    """
    keep_freed_memory()  # the next step reuses this step's freed blocks (training.memory); same arithmetic
    dist = distributed.setup(config.device)
    try:
        device = distributed.resolve_device(config.device, dist)
        _check_machine(config, device, dist)
        if len(train_set) == 0:  # type: ignore[arg-type]
            raise ValueError("the training set is empty; check --data")
        with RunFolder(config.out, resume=resume, force=force, active=dist.is_main) as folder:
            run = _start(config, model, folder, device, dist, val_set, data_id, class_names, resume)
            run.class_weights = _class_weights(config, train_set, run)
            interrupted = _loop(run, train_set, on_step, progress)
        distributed.barrier(dist)
        return TrainResult(run_dir=folder.path, checkpoint=folder.checkpoint, iteration=run.iteration,
                           interrupted=interrupted, history=run.log.state()["history"],
                           final=run.log.val[-1] if run.log.val else None, model=run.model, seconds=run.elapsed())
    finally:
        distributed.teardown(dist)


def _class_weights(config: TrainConfig, train_set: torch.utils.data.Dataset, run: _Run) -> Tensor | None:
    """``config.class_weighting``'s weights, from the label files of ``train_set`` (None: the paper's loss)."""
    if config.class_weighting == "none":
        return None
    samples = getattr(train_set, "samples", None)  # CityscapesSegmentation: (image, label) file pairs
    if not samples:
        raise ValueError(f"class_weighting={config.class_weighting!r} reads the class frequencies from the training "
                         "set's label files, but this dataset has none (no .samples); use a CityscapesSegmentation or "
                         "class_weighting='none'")
    weights = class_weights(class_frequencies(label for _, label in samples), config.class_weighting)
    assert weights is not None
    names = run.class_names or [str(c) for c in range(len(weights))]
    run.say(f"class weights ({config.class_weighting}): "
            + ", ".join(f"{name} {w:.2f}" for name, w in zip(names, weights.tolist()) if w > 0))
    return weights.to(run.device)


def _check_machine(config: TrainConfig, device: torch.device, dist: distributed.Distributed) -> None:
    if config.precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 AMP needs CUDA; on the CPU use --precision bf16")
    if config.batch_size % dist.world_size:
        raise ValueError(f"batch size {config.batch_size} is not divisible by the {dist.world_size} processes; "
                         "the batch size is global (the paper's 16 over all GPUs)")


def _start(config: TrainConfig, model: nn.Module, folder: RunFolder, device: torch.device,
           dist: distributed.Distributed, val_set: torch.utils.data.Dataset | None, data_id: str | None,
           class_names: Sequence[str] | None, resume: bool) -> _Run:
    """Put the model on its device, build the optimiser, and restore the saved state on resume."""
    saved = _resumable(folder, config, data_id) if resume else None
    model = distributed.sync_batchnorm(model, dist, device).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = build_optimizer(model, config)
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
    net = distributed.wrap(model, dist, device, find_unused=config.alpha == 0)  # alpha 0: no gradient for aux
    run = _Run(config, model, net, optimizer, scheduler, scaler, TrainLog(), device, folder, val_set, dist, data_id,
               list(class_names) if class_names is not None else None)
    if saved is None:
        seed_everything(config.seed)  # dropout and anything else drawing from the global RNGs
        return run
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    if saved["scaler"]:
        scaler.load_state_dict(saved["scaler"])
    run.iteration, run.log, run.seconds = saved["iteration"], TrainLog.from_state(saved), saved.get("seconds", 0.0)
    set_rng_state(saved["rng"])
    run.say(f"resuming {folder.checkpoint} at iteration {run.iteration}/{config.iters}")
    return run


def _resumable(folder: RunFolder, config: TrainConfig, data_id: str | None) -> dict[str, Any]:
    """The checkpoint to resume, after checking that it was trained with these settings and data."""
    saved = load_checkpoint(folder.checkpoint)
    differences = config_differences(saved_config(saved, str(folder.checkpoint)), config, RESUMABLE_CHANGES)
    if differences:
        raise ValueError(f"{folder.checkpoint} was trained with other settings ({'; '.join(differences)}); "
                         "resume with the same settings, or start a new run with another --out")
    if saved.get("data_id") != data_id:
        raise ValueError(f"{folder.checkpoint} was trained on other data than {config.data} (its fingerprint "
                         "differs); resume with the data it was trained on, or start a new run with another --out")
    return saved


def _loop(run: _Run, train_set: torch.utils.data.Dataset, on_step: Callable[[int], None] | None,
          progress: bool | None) -> bool:
    """Train to ``config.iters``; save, evaluate and save again. Returns True if stopped by a signal."""
    config, start = run.config, run.iteration
    per_process = config.batch_size // run.dist.world_size
    batches = make_loader(train_set, per_process, seed=config.seed, start=start, rank=run.dist.rank,
                          world_size=run.dist.world_size, num_workers=config.num_workers,
                          pin_memory=run.device.type == "cuda",
                          background=None if run.device.type == "cpu" else True)  # a GPU step leaves the CPU free
    show_bar = progress if progress is not None else (sys.stderr.isatty() and not os.environ.get("TQDM_DISABLE"))
    bar = tqdm(total=config.iters, initial=start, desc="train", unit="it", dynamic_ncols=True,
               disable=not (show_bar and run.dist.is_main))
    run.net.train()
    run.started = time.perf_counter() if run.iteration < config.iters else 0.0  # 0: a finished run, read back
    # The signal handlers stay until the last checkpoint is on disk.
    with StopFlag(run.say) as stop, bar, contextlib.closing(batches):
        try:
            while run.iteration < config.iters:
                images, masks = next(batches)
                losses = _step(run, images, masks)
                run.iteration += 1
                _after_step(run, losses, bar, show_bar)
                if on_step is not None:
                    on_step(run.iteration)
                if run.iteration < config.iters and distributed.all_agree(stop.requested, run.dist, run.device, every=False):
                    run.save()
                    run.say(f"stopped at iteration {run.iteration}/{config.iters}; checkpoint saved to "
                            f"{run.folder.checkpoint}; continue with --resume")
                    return True
                if config.checkpoint_every and run.iteration % config.checkpoint_every == 0 and run.iteration < config.iters:
                    run.save()
        except Exception as error:  # a corrupt label, images of mixed sizes, out of memory, a full disk...
            if isinstance(error, NonFiniteLossError) or run.iteration == start:
                raise  # nothing trained to keep (a diverged run keeps its last good checkpoint)
            _save_after(run, error, f"the {run.iteration - start} iterations done were saved to "
                                    f"{run.folder.checkpoint}: fix the problem, then continue with --resume")
        _finish(run, trained=run.iteration != start)
    return False


def _save_after(run: _Run, error: Exception, saved: str) -> NoReturn:
    """Save the run after ``error``, then raise it as a ValueError that says what was ``saved``.

    Whatever stopped the run, the steps done are not lost: the run continues exactly from
    here with --resume. If the save fails as well (a full disk), that error is raised instead:
    it says which file was kept.
    """
    try:
        run.save()
    except Exception:
        raise error from None
    raise ValueError(f"{_describe(error)} ({saved})") from error


def _describe(error: Exception) -> str:
    """Our errors (ValueError, OSError) are sentences already; others get their type: "RuntimeError: ..."."""
    if isinstance(error, (ValueError, OSError)):
        return str(error)
    return f"{type(error).__name__}: {str(error).strip() or 'no message'}"


def _step(run: _Run, images: Tensor, masks: Tensor) -> tuple[Tensor, dict[str, Tensor]] | None:
    """One iteration: the recipe's :func:`~pspnet_edu.training.step.train_step`, with the machine around it.

    Around the step: the batch moved to the device (channels_last if asked), the model's forward
    under autocast and the RNG lock (:class:`_Forward`), fp16's GradScaler, and a loss that is not
    finite on any process stops the run (the weights of that step are never saved).

    A batch without one labelled pixel (unannotated frames: every label void, 255) teaches
    nothing: the step is skipped (no update; None is returned), but it counts as an iteration
    and the schedule moves on, so that the run stays the same whether it is resumed or not.
    """
    if not distributed.all_agree(bool((masks != IGNORE_INDEX).any()), run.dist, run.device, every=False):
        with warnings.catch_warnings():  # intended: the schedule follows the iterations, updates or not
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            run.scheduler.step()
        return None
    images = images.to(run.device, non_blocking=True)  # (B, 3, H, W)
    masks = masks.to(run.device, non_blocking=True)  # (B, H, W) trainIds
    if run.config.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    rate = run.optimizer.param_groups[0]["lr"]
    losses = train_step(_Forward(run), images, masks, run.optimizer, run.scheduler, run.config.alpha,
                        scaler=run.scaler if run.scaler.is_enabled() else None, class_weights=run.class_weights)
    if not distributed.is_finite(losses["loss"], run.dist, run.device):
        _diverged(run, losses["loss"], rate)
    return losses["loss"], {name: value for name, value in losses.items() if name != "loss"}


class _Forward:
    """The model as the trainer calls it: dropout under the RNG lock, autocast, float32 logits."""

    def __init__(self, run: _Run) -> None:
        self.net, self.precision, self.device = run.net, run.config.precision, run.device

    def __call__(self, images: Tensor) -> dict[str, Tensor]:
        with GLOBAL_RNG_LOCK, _autocast(self.precision, self.device):  # dropout draws from the global RNG
            outputs = self.net(images)  # {"out": (B, K, H, W), "aux": (B, K, H, W)}
        return {name: logits.float() for name, logits in outputs.items()}  # the loss in float32


def _autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def _diverged(run: _Run, loss: Tensor, rate: float) -> None:
    """Stop the run: write the history with the bad loss, keep the last good checkpoint (not this step's weights).

    A run started with --force that has not saved yet writes nothing: the folder still holds
    the previous run, which is kept as it was.
    """
    if run.dist.is_main and run.folder.started:
        bad = TrainLog(train=run.log.train + [{"iteration": run.iteration + 1, "loss": float(loss.detach())}], val=run.log.val)
        write_history(run.folder.path, bad, run.class_names)
    if not run.folder.started:
        kept = f"the previous run in {run.folder.path} was left as it was"
    elif run.folder.checkpoint.exists():
        kept = f"the last good checkpoint {run.folder.checkpoint} was kept"
    else:
        kept = "no checkpoint had been saved yet"
    raise NonFiniteLossError(
        f"the loss became {float(loss.detach())} at iteration {run.iteration + 1} (lr {rate:.3g}); "
        f"the run diverged and was stopped, {kept}. Lower the learning rate "
        f"(e.g. --lr {run.config.lr / 10:g}) and start again")


def _after_step(run: _Run, losses: tuple[Tensor, dict[str, Tensor]] | None, bar: tqdm, show_bar: bool) -> None:
    """Log the losses (a history row every ``log_every`` steps) and evaluate when it is time."""
    config, iteration = run.config, run.iteration
    if losses is None:
        run.say(f"iteration {iteration}: no labelled pixel in this batch (every label is void, 255): skipped, "
                "no update")
    else:
        run.log.add_step(*losses)
    if iteration % config.log_every == 0 or iteration == config.iters:
        rates = {group["name"]: group["lr"] for group in run.optimizer.param_groups}
        row = run.log.close_window(iteration, rates)
        bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}")
        if not show_bar and (iteration % max(config.log_every, config.iters // 10) == 0 or iteration == config.iters):
            run.say(f"iteration {iteration}/{config.iters}: loss {row['loss']:.4f} (main {row['loss_main']:.4f}, "
                    f"aux {row['loss_aux']:.4f}), lr {row['lr']:.2e}")
    bar.update(1)
    if config.eval_every and iteration % config.eval_every == 0 and iteration < config.iters:
        _evaluate(run)


def _finish(run: _Run, trained: bool) -> None:
    """The end of a run: save the weights first, then the final evaluation, then save its scores."""
    needs_evaluation = run.val_set is not None and not run.log.evaluated_at(run.iteration)
    if trained or needs_evaluation:
        run.save()  # a finished training is on disk before anything else can fail
    if not needs_evaluation:
        return
    score = f"score them with pspnet-edu evaluate --checkpoint {run.folder.checkpoint}"
    try:
        _evaluate(run)
    except KeyboardInterrupt:  # a second Ctrl-C: the weights are safe, say where
        raise KeyboardInterrupt(f"stopped during the final evaluation; the trained weights were saved to "
                                f"{run.folder.checkpoint}: {score}") from None
    except Exception as error:  # e.g. a corrupt validation label, or out of memory
        raise ValueError(f"{_describe(error)} (the trained weights were saved to {run.folder.checkpoint}: fix the "
                         f"problem, then {score})") from error
    run.save()


def _evaluate(run: _Run) -> None:
    """Score the model on the validation set (rank 0 only) and add the row to the history."""
    if run.val_set is None or not run.dist.is_main:
        return
    per_process = run.config.batch_size // run.dist.world_size
    model = prepare_for_inference(run.model, device=run.device)  # the same logits, faster (folded BN)
    metrics = evaluate(model, run.val_set, device=run.device,  # classes: the model's output channels
                       batch_size=per_process, num_workers=run.config.num_workers)
    run.log.val.append({"iteration": run.iteration, "miou": metrics["miou"], "pixel_acc": metrics["pixel_acc"],
                        "mean_acc": metrics["mean_acc"], "iou": metrics["iou"]})
    run.say(f"iteration {run.iteration}: val mIoU {metrics['miou']:.4f}, pixel acc {metrics['pixel_acc']:.4f}")
