"""Tests for pspnet_edu.training.sampling: batches cover each epoch, restart exactly, shard by rank,
and are the same whether a background thread prepares them or not."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from pspnet_edu.training import sampling
from pspnet_edu.training.sampling import (EndlessBatches, Inline, Prefetcher, SeededSamples, make_loader, rng_state,
                                          set_rng_state)


def test_endless_batches_cover_each_epoch_and_restart_exactly() -> None:
    sampler = EndlessBatches(10, 3, seed=0)  # 3 batches per epoch, one image dropped
    stream = iter(sampler)
    batches = [next(stream) for _ in range(7)]
    epoch0 = [index for batch in batches[:3] for _, index in batch]
    assert len(set(epoch0)) == 9 and all(e == 0 for batch in batches[:3] for e, _ in batch)
    assert batches[3][0][0] == 1 and batches[6][0][0] == 2
    restarted = iter(EndlessBatches(10, 3, seed=0, start=4))
    assert [next(restarted) for _ in range(3)] == batches[4:7]
    shards = [next(iter(EndlessBatches(10, 2, seed=0, rank=r, world_size=2))) for r in range(2)]
    assert not set(shards[0]) & set(shards[1])  # two processes read different images


class Draws(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[float, float, float]:
        return float(torch.rand(())), random.random(), float(np.random.rand())


def test_a_sample_depends_only_on_seed_epoch_and_index_and_leaves_the_callers_rngs_alone() -> None:
    samples = SeededSamples(Draws(), seed=7)
    torch.manual_seed(1)
    before = rng_state()
    first = samples[(2, 3)]
    after = rng_state()
    assert torch.equal(before["torch"], after["torch"]) and before["python"] == after["python"]
    assert torch.equal(before["numpy"]["keys"], after["numpy"]["keys"])
    torch.manual_seed(99)  # whatever the global state, the sample is the same
    assert samples[(2, 3)] == first and samples[(2, 2)] != first and samples[(3, 3)] != first


def test_a_sample_is_seeded_as_torch_manual_seed_seeds_the_cpu_and_leaves_the_gpus_generators_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The draws of committed runs are kept, and dropout on a GPU keeps its own random stream."""
    samples = SeededSamples(Draws(), seed=7)
    seed = sampling.sample_seed(7, 2, 3)
    torch.manual_seed(seed), random.seed(seed), np.random.seed(seed % 2**32)
    expected = Draws()[3]
    reseeded: list[int] = []
    for device in (torch.cuda, torch.xpu, torch.mtia):
        monkeypatch.setattr(device, "manual_seed_all", reseeded.append, raising=False)
    assert samples[(2, 3)] == expected
    assert reseeded == []  # torch.manual_seed would reseed them (and fork_rng(devices=[]) not restore them)


def test_rng_state_round_trip() -> None:
    state = rng_state()
    expected = (float(torch.rand(())), random.random(), float(np.random.rand()))
    set_rng_state(state)
    assert (float(torch.rand(())), random.random(), float(np.random.rand())) == expected


def test_the_batches_are_the_same_with_or_without_the_background_thread() -> None:
    def draw(background: bool) -> list[torch.Tensor]:
        loader = make_loader(Draws(), 2, seed=3, start=1, background=background)
        try:
            return [torch.stack([torch.as_tensor(column) for column in next(loader)]) for _ in range(5)]
        finally:
            loader.close()

    torch.manual_seed(0)
    inline, ahead = draw(False), draw(True)
    assert all(torch.equal(a, b) for a, b in zip(inline, ahead))
    assert not torch.equal(inline[0], inline[1])  # the draws do vary


@pytest.mark.parametrize(("cores", "threads", "workers", "expected"), [
    (2, 2, 0, Inline),  # every core runs a torch thread: the batches between the steps
    (2, 1, 0, Prefetcher),  # a core to spare: prepared ahead
    (2, 2, 1, Prefetcher),  # DataLoader processes do the work; the thread only waits for them
])
def test_the_background_thread_only_where_a_core_is_free(monkeypatch: pytest.MonkeyPatch, cores: int, threads: int,
                                                       workers: int, expected: type) -> None:
    monkeypatch.setattr(sampling.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(sampling.torch, "get_num_threads", lambda: threads)
    assert sampling.spare_core() == (cores > threads)
    loader = make_loader(Draws(), 2, seed=0, start=0, num_workers=workers)
    try:
        assert type(loader) is expected
    finally:
        loader.close()
