"""Seeds and batches: every random number of a run follows from its seed, so a run can be resumed exactly.

- the model's initialisation: ``seed`` (:func:`pspnet_edu.training.setup.build_model`);
- the order of the training images: a ``DistributedSampler`` at ``set_epoch(epoch)``, one shard
  per process (:class:`EndlessBatches`);
- the augmentation of image ``index`` in ``epoch``: ``(seed, epoch, index)``
  (:class:`SeededSamples`), whichever process or worker loads it;
- dropout: the global torch RNG, seeded at the start and saved in every checkpoint.

So a run stopped and resumed from its checkpoint ends with exactly the weights of an
uninterrupted run (on the CPU), whatever the number of data-loading workers.

Where a core is free for it, batches are prepared ahead in a background thread
(:class:`Prefetcher`) while the model trains on the current one; where torch's threads
already take every core, they are prepared between the steps (:func:`spare_core`). The torch
and Python RNGs are global to the process, so the thread and the training step take turns with
them under :data:`GLOBAL_RNG_LOCK`: a sample is drawn with its own seed and the global state
restored before the lock is released, and the step holds the lock only for its forward pass
(dropout), so the backward pass and the update overlap with the preparation of the next batch.
Either way the batches are the same, and so are the weights.
"""

from __future__ import annotations

import os
import queue
import random
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


GLOBAL_RNG_LOCK = threading.Lock()  # held while torch's, numpy's or Python's global RNG is in use


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), numpy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG state, as tensors and plain Python values (safe for ``weights_only`` loading)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    python_version, python_state, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": list(python_state) + [python_version],
        "python_gauss": python_gauss,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    python = state["python"]
    random.setstate((python[-1], tuple(python[:-1]), state["python_gauss"]))


def sample_seed(*numbers: int) -> int:
    """A well-mixed 63-bit seed from a few integers (numpy's SeedSequence).

    >>> sample_seed(0, 1, 2) == sample_seed(0, 1, 2) != sample_seed(0, 2, 1)
    True
    """
    return int(np.random.SeedSequence([n % 2**63 for n in numbers]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class SeededSamples(torch.utils.data.Dataset):
    """Wraps a dataset so that the augmentation of image ``index`` in ``epoch`` depends only on
    ``(seed, epoch, index)``: the same crops and flips whichever process, worker or thread
    loads it, and whenever (so a resumed run sees exactly the images an uninterrupted run would)."""

    def __init__(self, dataset: torch.utils.data.Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        seed = sample_seed(self.seed, epoch, index)
        with GLOBAL_RNG_LOCK:
            python_state, numpy_state = random.getstate(), np.random.get_state()
            with torch.random.fork_rng(devices=[]):  # the caller's torch RNG is left untouched
                # The CPU generator only: torch.manual_seed would also reseed the GPU's generator,
                # which fork_rng(devices=[]) does not restore (dropout on a GPU draws from it), and
                # where no GPU is initialised it records a traceback per device (0.12 ms, 1 us without).
                torch.default_generator.manual_seed(seed)
                random.seed(seed)
                np.random.seed(seed % 2**32)
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


class Prefetcher:
    """Yield the batches of ``batches`` (in order) while a background thread prepares the next ones.

    At most ``depth`` batches wait ready. An error in the thread is raised in the caller at the
    batch where it happened. :meth:`close` stops the thread.
    """

    _END = object()

    def __init__(self, batches: Iterator[Any], depth: int = 2) -> None:
        self._ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(batches,), name="pspnet-edu-batches", daemon=True)
        self._thread.start()

    def _fill(self, batches: Iterator[Any]) -> None:
        try:
            for batch in batches:
                if not self._put(batch):
                    return
        except Exception as error:  # handed over to the training thread
            self._put(error)
            return
        self._put(self._END)

    def _put(self, item: Any) -> bool:
        while not self._closed.is_set():
            try:
                self._ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        item = self._ready.get()
        if item is self._END:
            raise StopIteration
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=30)


class Inline:
    """Yield the batches of ``batches`` as they are asked for (what :class:`Prefetcher` does, without the thread)."""

    def __init__(self, batches: Iterator[Any]) -> None:
        self._batches = batches

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._batches)

    def close(self) -> None:
        self._batches = iter(())  # lets DataLoader workers, if any, shut down


def spare_core() -> bool:
    """True if this process may use more cores than torch's intra-op threads take.

    A background thread on a machine whose cores all run torch's threads does not overlap with
    the step: it takes a core from one of them, and each parallel operation waits for its
    slowest thread. The default training command's 60 steps with their batches (two threads, two
    cores, AMD EPYC without AVX-512, glibc's malloc as it was) took 22.3 s with the thread and
    19.0 s with the batches prepared between the steps (2026-12-06, median of 2; the batches alone
    took 1.9 s). Only this process is counted: two runs of one thread each side by side
    (``make demo``) keep their threads, which measured as fast as without (200 steps: 52-54 s
    against 53-55 s). Affinity is not a CPU quota: in a container limited by cgroups this counts
    cores the process may not get (then :func:`make_loader` takes ``background`` explicitly).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores > torch.get_num_threads()


def make_loader(dataset: torch.utils.data.Dataset, batch_size: int, *, seed: int, start: int, rank: int = 0,
                world_size: int = 1, num_workers: int = 0, pin_memory: bool = False,
                background: bool | None = None) -> Prefetcher | Inline:
    """Endless ``(images, masks)`` batches of this process, from batch ``start`` of the run on.

    ``background``: prepare the batches ahead in a :class:`Prefetcher` thread (None: where a
    core is free for it, :func:`spare_core`, or where ``num_workers`` DataLoader processes do
    the work, which on a small CPU compete with the training for the cores); else between the
    steps (:class:`Inline`). The batches are the same either way.
    """
    batches = EndlessBatches(len(dataset), batch_size, seed=seed, rank=rank,  # type: ignore[arg-type]
                             world_size=world_size, start=start)
    loader = torch.utils.data.DataLoader(
        SeededSamples(dataset, seed), batch_sampler=batches, num_workers=num_workers, pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed))  # not the global RNG: see SeededSamples
    if background is None:
        background = num_workers > 0 or spare_core()
    return Prefetcher(iter(loader)) if background else Inline(iter(loader))
