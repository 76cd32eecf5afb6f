"""Training throughput of the tiny preset, option by option: images per second with real data.

Each option is one step of the trainer (``pspnet_edu.training``: two parameter groups, main +
0.4 aux loss, SGD, poly) fed by the real Synthcity loader (decoding, random scale, flip, crop,
normalisation), batch 8 of 128x256, so that data loading is counted as in a run:

    nchw, inline       what commit 47bc2cf did: NCHW activations, batches prepared between steps
    channels_last      NHWC activations (the default since then), batches prepared between steps:
                       the trainer's default where torch's threads take every core
    + prefetch         batches prepared by a background thread during the step: the trainer's
                       default where a core is free for it (training.sampling.spare_core)
    + bf16             channels_last, inline, under bfloat16 autocast (the documented fast option
                       on CPUs with AVX512-BF16/AMX)
    step only          the channels_last step on one fixed batch: no data loading at all

Like the trainer, the benchmark first keeps freed memory for reuse (``training.memory``), for
every option alike; ``--default-malloc`` leaves glibc's malloc as it is, to see what that gives.

The options run interleaved, one block of steps each in turn, so that a shared machine slows
them alike; the figure is the median over the blocks of (images / seconds), with the spread
(min-max) beside it. The prefetching thread fills its queue (two batches) while the other
options run, so here it costs less than in a training run, where it competes with every step
(``training.sampling.spare_core`` gives that measurement).

Run:  python benchmarks/bench_train.py [--blocks 5] [--steps 10] [--threads 2] [--default-malloc]

Numbers depend on the machine and on whatever else runs on it: report them with the machine,
and never assert them in a test.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from pspnet_edu.data import ensure_synthetic
from pspnet_edu.loss import pspnet_loss
from pspnet_edu.provenance import machine
from pspnet_edu.training import TrainConfig, build_datasets, build_model, build_optimizer
from pspnet_edu.training.memory import keep_freed_memory
from pspnet_edu.training.sampling import GLOBAL_RNG_LOCK, make_loader


@dataclass(frozen=True)
class Option:
    name: str
    channels_last: bool
    prefetch: bool | None  # None: one fixed batch, no loading
    precision: str = "fp32"


OPTIONS = (
    Option("nchw, inline (47bc2cf)", channels_last=False, prefetch=False),
    Option("channels_last, inline", channels_last=True, prefetch=False),
    Option("channels_last + prefetch", channels_last=True, prefetch=True),
    Option("channels_last, inline + bf16 autocast", channels_last=True, prefetch=False, precision="bf16"),
    Option("channels_last step only, no loading", channels_last=True, prefetch=None),
)


def make_stepper(option: Option, config: TrainConfig, dataset: Any) -> Callable[[], None]:
    """One training step of ``option``, with its own model, optimiser and batch stream."""
    model = build_model(config).train()
    if option.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = build_optimizer(model, config)
    if option.prefetch is None:
        fixed = next(make_loader(dataset, config.batch_size, seed=config.seed, start=0, background=False))
        batches: Iterator[Any] = itertools.repeat(fixed)
    elif option.prefetch:
        batches = make_loader(dataset, config.batch_size, seed=config.seed, start=0, background=True)
    else:
        batches = make_loader(dataset, config.batch_size, seed=config.seed, start=0, background=False)
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if option.precision == "bf16"
                else contextlib.nullcontext())

    def step() -> None:
        images, masks = next(batches)
        if option.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with GLOBAL_RNG_LOCK, autocast:
            outputs = model(images)
        loss, _ = pspnet_loss({k: v.float() for k, v in outputs.items()}, masks, aux_weight=config.alpha)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks per option (interleaved)")
    parser.add_argument("--steps", type=int, default=10, help="steps per block")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc as it is (the trainer keeps freed memory for reuse)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = False if args.default_malloc else keep_freed_memory()
    config = TrainConfig(data=str(ensure_synthetic()), iters=10_000)
    train_set, _ = build_datasets(config)
    steppers = {option: make_stepper(option, config, train_set) for option in OPTIONS}
    for step in steppers.values():  # warm-up: allocator, thread pools, the prefetch queue
        for _ in range(3):
            step()
    speeds: dict[Option, list[float]] = {option: [] for option in OPTIONS}
    for _ in range(args.blocks):
        for option, step in steppers.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            speeds[option].append(config.batch_size * args.steps / (time.perf_counter() - start))
    print(machine())
    print(f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads; tiny preset, batch "
          f"{config.batch_size} x {config.crop[0]}x{config.crop[1]}, Synthcity; median (min-max) of {args.blocks} "
          f"interleaved blocks of {args.steps} steps; freed memory kept for reuse: {'yes' if kept else 'no'}")
    baseline = statistics.median(speeds[OPTIONS[0]])
    print(f"{'option':<40}{'images/s':>10}{'spread':>16}{'vs 47bc2cf':>12}")
    for option, values in speeds.items():
        median = statistics.median(values)
        spread = f"{min(values):.1f}-{max(values):.1f}"
        print(f"{option.name:<40}{median:>10.1f}{spread:>16}{median / baseline:>11.2f}x")


if __name__ == "__main__":
    main()
