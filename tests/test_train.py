"""Tests for pspnet_edu.train: parameter groups, overfitting, exact resume, NaN, bad input."""

from __future__ import annotations

import csv
import math
import json
import os
import signal

import pytest
import torch
from torch import nn

from pspnet_edu.pspnet import build_pspnet
from pspnet_edu.train import (
    EndlessBatches,
    NonFiniteLossError,
    TrainConfig,
    load_checkpoint,
    model_from_checkpoint,
    param_groups,
    train,
)

SIZE = (48, 48)  # the tiny preset needs >= 41 pixels so that its 1/8 map covers the 6x6 bin


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class Toy(torch.utils.data.Dataset):
    """Blocky scenes of 4 classes, each drawn in its own colour plus noise, with a random flip
    drawn from the global torch RNG (as torchvision transforms do)."""

    def __init__(self, n: int = 6, augment: bool = True) -> None:
        generator = torch.Generator().manual_seed(123)
        coarse = torch.randint(0, 4, (n, 1, 6, 6), generator=generator).float()
        self.masks = nn.functional.interpolate(coarse, size=SIZE, mode="nearest")[:, 0].long()  # (n, H, W)
        colours = torch.randn(4, 3, generator=generator)
        self.images = colours[self.masks].permute(0, 3, 1, 2) + 0.3 * torch.randn(n, 3, *SIZE, generator=generator)
        self.masks[:, :2, :] = 255  # a few ignored pixels
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.images[i], self.masks[i]
        if self.augment and torch.rand(()) < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        return image, mask


def config(tmp_path, name: str = "run", **changes) -> TrainConfig:
    settings = dict(preset="tiny", num_classes=4, out=str(tmp_path / name), iters=6, batch_size=2,
                    crop=SIZE, log_every=1, seed=0)
    settings.update(changes)
    return TrainConfig(**settings)


def test_param_groups_by_name() -> None:
    model = build_pspnet("tiny", num_classes=4)
    groups = param_groups(model, lr=0.01, head_lr_mult=10)
    assert [g["name"] for g in groups] == ["backbone", "head"]
    assert groups[0]["lr"] == 0.01 and groups[1]["lr"] == pytest.approx(0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].startswith("backbone.") for p in groups[0]["params"])
    assert {names[id(p)].split(".")[0] for p in groups[1]["params"]} == {"ppm", "head", "aux_head"}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_overfits_one_batch(tmp_path) -> None:
    torch.manual_seed(0)
    data = Toy(n=2, augment=False)
    result = train(config(tmp_path, iters=40, lr=0.01, alpha=0.4), train_set=data, val_set=data)
    losses = [row["loss"] for row in result.history["train"]]
    assert losses[-1] < 0.3 * losses[0], losses
    assert result.final is not None and result.final["miou"] > 0.8
    # the lr followed the poly policy down to 0 at the last iteration
    assert result.history["train"][-1]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_history_and_checkpoint_files(tmp_path) -> None:
    data = Toy()
    result = train(config(tmp_path, eval_every=3), train_set=data, val_set=data)
    checkpoint = load_checkpoint(result.checkpoint)  # weights_only=True inside
    for key in ("model", "optimizer", "scheduler", "iteration", "config", "model_config", "rng"):
        assert key in checkpoint
    assert checkpoint["iteration"] == 6 and checkpoint["config"]["preset"] == "tiny"
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [row["iteration"] for row in history["val"]] == [3, 6]
    assert len(history["val"][0]["iou"]) == 4
    rows = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[2]["val_miou"] != "" and rows[1]["val_miou"] == ""
    # the checkpoint rebuilds the same model
    model = model_from_checkpoint(result.checkpoint)
    images = torch.randn(2, 3, *SIZE)
    result.model.eval()
    with torch.no_grad():
        assert torch.equal(model(images)["out"], result.model(images)["out"])
    assert not list(tmp_path.glob("run/.*tmp"))  # no temporary files left behind


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path) -> None:
    data = Toy()
    changes = dict(iters=8, eval_every=4, checkpoint_every=3)
    full = train(config(tmp_path, "full", **changes), train_set=data, val_set=data)

    def interrupt(iteration: int) -> None:
        if iteration == 5:  # the test sends itself Ctrl-C, as a user would
            os.kill(os.getpid(), signal.SIGINT)

    handler_before = signal.getsignal(signal.SIGINT)
    stopped = train(config(tmp_path, "split", **changes), train_set=data, val_set=data, on_step=interrupt)
    assert stopped.interrupted and stopped.iteration == 5
    assert signal.getsignal(signal.SIGINT) is handler_before  # handlers restored
    assert load_checkpoint(tmp_path / "split")["iteration"] == 5
    resumed = train(config(tmp_path, "split", **changes), train_set=data, val_set=data, resume=True)
    assert resumed.iteration == 8 and not resumed.interrupted

    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "split")
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for state_a, state_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(state_a["momentum_buffer"], state_b["momentum_buffer"])
    assert a["history"] == b["history"]
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


def test_resume_is_exact_with_data_loading_workers(tmp_path) -> None:
    """Augmentation is seeded per (seed, epoch, index), so worker processes change nothing."""
    data = Toy()
    full = train(config(tmp_path, "full", iters=5), train_set=data, val_set=None)

    def interrupt(iteration: int) -> None:
        if iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)

    train(config(tmp_path, "split", iters=5, num_workers=1), train_set=data, val_set=None, on_step=interrupt)
    resumed = train(config(tmp_path, "split", iters=5, num_workers=2), train_set=data, val_set=None, resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_interruption_changes_nothing_only_if_state_is_restored(tmp_path) -> None:
    """Guard against a resume test that cannot fail: a different seed gives different weights."""
    data = Toy()
    one = train(config(tmp_path, "one", iters=3), train_set=data, val_set=None)
    two = train(config(tmp_path, "two", iters=3, seed=1), train_set=data, val_set=None)
    a, b = one.model.state_dict(), two.model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


class Poisonable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = build_pspnet("tiny", num_classes=4)
        self.config = self.net.config
        self.poisoned = False

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.net(x)
        return {k: v * float("nan") for k, v in out.items()} if self.poisoned else out


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path) -> None:
    model = Poisonable()

    def poison(iteration: int) -> None:
        model.poisoned = iteration >= 4

    with pytest.raises(NonFiniteLossError, match=r"iteration 5.*kept.*--lr"):
        train(config(tmp_path, iters=10, checkpoint_every=2), model=model, train_set=Toy(), val_set=None, on_step=poison)
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_bad_input(tmp_path) -> None:
    with pytest.raises(ValueError, match="alpha"):
        TrainConfig(alpha=-0.1)
    with pytest.raises(ValueError, match="iters"):
        TrainConfig(iters=0)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(config(tmp_path), train_set=Toy(), resume=True)
    with pytest.raises(FileNotFoundError, match="pspnet-edu data synthetic"):
        train(config(tmp_path, data=str(tmp_path / "missing")))
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(config(tmp_path, batch_size=8), train_set=Toy(n=6))

    train(config(tmp_path, iters=1), train_set=Toy(), val_set=None)
    with pytest.raises(FileExistsError, match="--resume"):
        train(config(tmp_path, iters=1), train_set=Toy(), val_set=None)
    with pytest.raises(ValueError, match="other settings.*preset"):
        train(config(tmp_path, iters=1, preset="paper"), train_set=Toy(), resume=True)
    with pytest.raises(ValueError, match="other settings.*num_classes"):
        train(config(tmp_path, iters=1, num_classes=5), train_set=Toy(), resume=True)

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(corrupt)
    with pytest.raises(FileNotFoundError, match="train first"):
        load_checkpoint(tmp_path / "nowhere.pt")


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


def test_sigterm_saves_and_stops(tmp_path) -> None:
    def terminate(iteration: int) -> None:
        if iteration == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    handler_before = signal.getsignal(signal.SIGTERM)
    result = train(config(tmp_path, iters=4), train_set=Toy(), val_set=None, on_step=terminate)
    assert result.interrupted and result.iteration == 1
    assert load_checkpoint(tmp_path / "run")["iteration"] == 1
    assert signal.getsignal(signal.SIGTERM) is handler_before


def test_bf16_autocast_on_cpu(tmp_path) -> None:
    result = train(config(tmp_path, iters=2, precision="bf16"), train_set=Toy(), val_set=Toy())
    assert all(math.isfinite(row["loss"]) for row in result.history["train"])
    assert next(result.model.parameters()).dtype == torch.float32  # autocast leaves the weights in fp32
    with pytest.raises(ValueError, match="fp16 AMP needs CUDA"):
        train(config(tmp_path, "fp16", iters=2, precision="fp16"), train_set=Toy())
