"""Several processes under ``torchrun``: one process per GPU (or CPU slot), DistributedDataParallel.

``torchrun --nproc_per_node=N -m pspnet_edu train ...`` starts N copies of the same command
with ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` set. Each process joins the group (NCCL on
CUDA, gloo on the CPU), trains on its own shard of every epoch with ``batch_size / N`` images,
and DDP averages the gradients, so all processes keep identical weights. Only rank 0 writes
files or prints. On CUDA the BatchNorm layers become SyncBatchNorm, so that their statistics
come from the global batch, as the paper's (Sec. 5.1: "batch 16", statistics gathered over GPUs).

Deviation: PyTorch's SyncBatchNorm supports only GPUs, so on the CPU each process normalises
with its own batch and DDP broadcasts rank 0's running statistics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Distributed:
    """Where this process stands in the group (a single process: rank 0 of 1)."""

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


def setup(device: str) -> Distributed:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1), else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    initialise = not dist.is_initialized()
    if initialise:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Distributed(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                       world_size=world_size, initialised_here=initialise)


def teardown(info: Distributed) -> None:
    """Leave the process group if :func:`setup` joined it."""
    if info.initialised_here:
        dist.destroy_process_group()


def resolve_device(name: str, info: Distributed) -> torch.device:
    """The device to train on; under torchrun on CUDA, this process's own GPU (``LOCAL_RANK``)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("CUDA was requested but is not available on this machine; use --device cpu")
        if info.enabled:
            device = torch.device("cuda", info.local_rank)  # one GPU per process
        torch.cuda.set_device(device)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("MPS was requested but is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r} is not supported here; use cpu, cuda, cuda:N or mps")
    return device


def wrap(model: nn.Module, info: Distributed, device: torch.device, find_unused: bool) -> nn.Module:
    """The model itself in one process; wrapped in DistributedDataParallel under torchrun."""
    if not info.enabled:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                               find_unused_parameters=find_unused)


def sync_batchnorm(model: nn.Module, info: Distributed, device: torch.device) -> nn.Module:
    """SyncBatchNorm on CUDA under torchrun (statistics over the global batch); unchanged otherwise."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model) if info.enabled and device.type == "cuda" else model


def all_agree(flag: bool, info: Distributed, device: torch.device, every: bool) -> bool:
    """``flag`` of every process combined: all true (``every``) or any true; one process: ``flag``."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MIN if every else dist.ReduceOp.MAX)
    return bool(value.item())


def is_finite(loss: Tensor, info: Distributed, device: torch.device) -> bool:
    """True if the loss is finite in every process (they must agree, or they would deadlock)."""
    return all_agree(bool(torch.isfinite(loss.detach()).all()), info, device, every=True)


def barrier(info: Distributed) -> None:
    if info.enabled:
        dist.barrier()
