"""Tests for pspnet_edu.training.loop: learning, exact resume, signals, NaN, bf16, the final save."""

from __future__ import annotations

import csv
import json
import math
import os
import signal

import pytest
import torch
from torch import nn

from pspnet_edu.pspnet import PSPNet, build_pspnet
from pspnet_edu.training import NonFiniteLossError, build_model, load_checkpoint, model_from_checkpoint, train
from training_toys import SIZE, Toy, toy_config

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def run(config, data=None, val=None, **kwargs):
    data = Toy() if data is None else data
    return train(config, build_model(config), data, val, **kwargs)


def test_learns_one_batch(tmp_path) -> None:
    data = Toy(n=2, augment=False)
    result = run(toy_config(tmp_path, iters=40, lr=0.01, alpha=0.4), data, data)
    losses = [row["loss"] for row in result.history["train"]]
    assert losses[-1] < 0.3 * losses[0], losses
    assert result.final is not None and result.final["miou"] > 0.8
    # the rates of both groups followed the poly policy down to 0 at the last iteration
    first, last = result.history["train"][0], result.history["train"][-1]
    assert first["lr_head"] == pytest.approx(10 * first["lr"]) and last["lr"] == pytest.approx(0.0, abs=1e-12)


def test_history_and_checkpoint_files(tmp_path) -> None:
    data = Toy()
    result = run(toy_config(tmp_path, eval_every=3), data, data)
    checkpoint = load_checkpoint(result.checkpoint)  # weights_only=True inside
    assert {"model", "optimizer", "scheduler", "iteration", "config", "rng", "history", "window"} <= set(checkpoint)
    assert checkpoint["iteration"] == 6 and checkpoint["config"]["model"]["depth"] == 18
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [row["iteration"] for row in history["val"]] == [3, 6]
    assert len(history["val"][0]["iou"]) == 4
    rows = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[2]["val_miou"] != "" and rows[1]["val_miou"] == ""
    assert float(rows[0]["lr_head"]) == pytest.approx(10 * float(rows[0]["lr"]))
    # the checkpoint rebuilds the same model (trained channels_last: compared in that format)
    model = model_from_checkpoint(result.checkpoint).to(memory_format=torch.channels_last)
    images = torch.randn(2, 3, *SIZE).contiguous(memory_format=torch.channels_last)
    result.model.eval()
    with torch.no_grad():
        assert torch.equal(model(images)["out"], result.model(images)["out"])
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["history.csv", "history.json", "last.pt", "run.json"]


def test_same_seed_same_weights_other_seed_other_weights(tmp_path) -> None:
    one, again = run(toy_config(tmp_path, "one", iters=3)), run(toy_config(tmp_path, "again", iters=3))
    other = run(toy_config(tmp_path, "other", iters=3, seed=1))
    a, b, c = (r.model.state_dict() for r in (one, again, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_build_model_initialises_as_torch_manual_seed_and_leaves_the_gpus_generators_alone(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = toy_config(tmp_path, "init", seed=5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        expected = PSPNet(config.model).state_dict()  # how every committed run was initialised
    reseeded: list[int] = []
    for device in (torch.cuda, torch.xpu, torch.mtia):
        monkeypatch.setattr(device, "manual_seed_all", reseeded.append, raising=False)
    built = build_model(config).state_dict()
    assert all(torch.equal(built[k], expected[k]) for k in expected)
    assert reseeded == []  # torch.manual_seed would reseed them, and fork_rng(devices=[]) not restore them


def interrupt_at(step: int, signum: int = signal.SIGINT):
    def on_step(iteration: int) -> None:
        if iteration == step:  # the test sends itself the signal, as a user would
            os.kill(os.getpid(), signum)
    return on_step


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path) -> None:
    data = Toy()
    changes = dict(iters=8, eval_every=4, checkpoint_every=3)
    run(toy_config(tmp_path, "full", **changes), data, data)
    handler_before = signal.getsignal(signal.SIGINT)
    stopped = run(toy_config(tmp_path, "split", **changes), data, data, on_step=interrupt_at(5))
    assert stopped.interrupted and stopped.iteration == 5
    assert signal.getsignal(signal.SIGINT) is handler_before  # handlers restored
    assert load_checkpoint(tmp_path / "split")["iteration"] == 5
    resumed = run(toy_config(tmp_path, "split", **changes), data, data, resume=True)
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
    full = run(toy_config(tmp_path, "full", iters=5))
    run(toy_config(tmp_path, "split", iters=5, num_workers=1), on_step=interrupt_at(2))
    resumed = run(toy_config(tmp_path, "split", iters=5, num_workers=2), resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


class Poisonable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = build_pspnet("tiny", num_classes=4)
        self.poisoned = False

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.net(x)
        return {k: v * float("nan") for k, v in out.items()} if self.poisoned else out


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path) -> None:
    model = Poisonable()

    def poison(iteration: int) -> None:
        model.poisoned = iteration >= 4

    config = toy_config(tmp_path, iters=10, checkpoint_every=2)
    with pytest.raises(NonFiniteLossError, match=r"iteration 5.*kept.*--lr"):
        train(config, model, Toy(), on_step=poison)
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_sigterm_saves_and_stops(tmp_path) -> None:
    handler_before = signal.getsignal(signal.SIGTERM)
    result = run(toy_config(tmp_path, iters=4), on_step=interrupt_at(1, signal.SIGTERM))
    assert result.interrupted and result.iteration == 1
    assert load_checkpoint(tmp_path / "run")["iteration"] == 1
    assert signal.getsignal(signal.SIGTERM) is handler_before


class BrokenLabels(Toy):
    """A validation set whose labels fail to load, as a corrupt PNG would."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise ValueError("cannot decode val/x_gtFine_labelIds.png")


def test_a_failing_final_evaluation_keeps_the_trained_weights(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"cannot decode.*weights were saved to .*last\.pt.*pspnet-edu evaluate"):
        run(toy_config(tmp_path, iters=3), Toy(), BrokenLabels())
    assert load_checkpoint(tmp_path / "run")["iteration"] == 3


class BrokenLaterTraining(Toy):
    """A training set whose 16th image fails to load, as a corrupt label file would (found mid-run)."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.served = getattr(self, "served", 0) + 1
        if self.served > 15:
            raise ValueError("cannot decode train/x_gtFine_labelIds.png")
        return super().__getitem__(i)


def test_a_data_error_during_training_keeps_the_steps_done_and_resume_finishes(tmp_path) -> None:
    config = toy_config(tmp_path, iters=20)
    with pytest.raises(ValueError, match=r"cannot decode.*iterations done were saved to .*last\.pt.*--resume"):
        run(config, BrokenLaterTraining())
    done = load_checkpoint(tmp_path / "run")["iteration"]
    assert 0 < done < 20
    assert run(config, Toy(), resume=True).iteration == 20  # fixed data: the run goes on from there


def test_a_data_error_before_any_step_saves_nothing(tmp_path) -> None:
    with pytest.raises(ValueError, match="cannot decode"):
        run(toy_config(tmp_path, iters=3), BrokenLabels())
    assert not (tmp_path / "run" / "last.pt").exists()


class SignalDuringEvaluation(Toy):
    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i == 0:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the final evaluation runs
        return super().__getitem__(i)


def test_ctrl_c_during_the_final_evaluation_loses_nothing(tmp_path) -> None:
    result = run(toy_config(tmp_path, iters=3), Toy(), SignalDuringEvaluation())
    assert not result.interrupted and result.final is not None  # the first Ctrl-C only asks to stop
    saved = load_checkpoint(tmp_path / "run")
    assert saved["iteration"] == 3 and saved["history"]["val"][-1]["iteration"] == 3


def test_bf16_autocast_on_cpu(tmp_path) -> None:
    result = run(toy_config(tmp_path, iters=2, precision="bf16"), Toy(), Toy())
    assert all(math.isfinite(row["loss"]) for row in result.history["train"])
    assert next(result.model.parameters()).dtype == torch.float32  # autocast leaves the weights in fp32
    with pytest.raises(ValueError, match="fp16 AMP needs CUDA"):
        run(toy_config(tmp_path, "fp16", iters=2, precision="fp16"))


def test_channels_last_does_not_change_what_is_learnt(tmp_path) -> None:
    a = run(toy_config(tmp_path, "nhwc", iters=3, channels_last=True)).model.state_dict()
    b = run(toy_config(tmp_path, "nchw", iters=3, channels_last=False)).model.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-4) for k in a)


class OutOfMemoryDuringEvaluation(Toy):
    """A validation set whose evaluation fails with a RuntimeError, as an out-of-memory error would."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_a_runtime_error_in_a_periodic_evaluation_keeps_the_steps_and_the_folder(tmp_path) -> None:
    """It once deleted the whole run folder: only ValueError and OSError saved the steps done."""
    with pytest.raises(ValueError, match=r"RuntimeError: CUDA out of memory.*2 iterations done were saved to "
                                         r".*last\.pt.*--resume"):
        run(toy_config(tmp_path, iters=4, eval_every=2), Toy(), OutOfMemoryDuringEvaluation())
    assert load_checkpoint(tmp_path / "run")["iteration"] == 2


def test_a_runtime_error_in_the_final_evaluation_keeps_the_weights(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"RuntimeError: CUDA out of memory.*weights were saved.*pspnet-edu evaluate"):
        run(toy_config(tmp_path, iters=2), Toy(), OutOfMemoryDuringEvaluation())
    assert load_checkpoint(tmp_path / "run")["iteration"] == 2


class Unannotated(Toy):
    """Frames without annotation: every label void (255)."""

    def __init__(self, n: int = 6) -> None:
        super().__init__(n)
        self.masks[:] = 255


def test_batches_without_a_labelled_pixel_are_skipped_not_taken_for_a_diverged_run(tmp_path, capsys) -> None:
    """It stopped with "the loss became nan ... lower the learning rate", whatever the rate."""
    config = toy_config(tmp_path, iters=3)
    model = build_model(config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(config, model, Unannotated())
    assert result.iteration == 3 and "no labelled pixel in this batch" in capsys.readouterr().out
    assert all(torch.equal(before[k], v) for k, v in result.model.state_dict().items())  # no update
    assert all(row["loss"] is None for row in json.loads((tmp_path / "run" / "history.json").read_text())["train"])
    assert result.history["train"][-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # the schedule moved on


class CtrlCTwiceDuringEvaluation(Toy):
    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        os.kill(os.getpid(), signal.SIGINT)  # the first asks to stop, the second aborts
        return super().__getitem__(i)


def test_ctrl_c_twice_during_the_final_evaluation_says_where_the_weights_are(tmp_path) -> None:
    with pytest.raises(KeyboardInterrupt, match=r"final evaluation; the trained weights were saved to .*last\.pt"):
        run(toy_config(tmp_path, iters=2), Toy(), CtrlCTwiceDuringEvaluation())
    assert load_checkpoint(tmp_path / "run")["iteration"] == 2


def test_class_weighting_reads_the_training_labels_saves_its_weights_and_changes_the_step(tmp_path, capsys) -> None:
    from pspnet_edu.data import CityscapesSegmentation, generate_synthetic
    from pspnet_edu.data.frequencies import class_frequencies
    from pspnet_edu.loss import class_weights
    from pspnet_edu.training import TrainConfig, train_from_config

    root = generate_synthetic(tmp_path / "synth", train=3, val=1, size=(48, 96))
    base = TrainConfig(data=str(root), iters=2, batch_size=2, crop=(48, 96), val_split=None, seed=0)
    weighted = train_from_config(TrainConfig(**{**base.__dict__, "class_weighting": "sqrt-median-frequency",
                                                "out": str(tmp_path / "weighted")}), progress=False)
    plain = train_from_config(TrainConfig(**{**base.__dict__, "out": str(tmp_path / "plain")}), progress=False)
    saved, unweighted = load_checkpoint(weighted.checkpoint), load_checkpoint(plain.checkpoint)
    labels = [label for _, label in CityscapesSegmentation(root, "train").samples]
    expected = class_weights(class_frequencies(labels), "sqrt-median-frequency")
    assert saved["class_weights"] == pytest.approx(expected.tolist()) and unweighted["class_weights"] is None
    assert "class weights (sqrt-median-frequency): road " in capsys.readouterr().out
    first = next(iter(saved["model"]))
    assert not torch.equal(saved["model"][first], unweighted["model"][first])  # same seed, other loss: other weights
    with pytest.raises(ValueError, match="no .samples"):
        run(toy_config(tmp_path, name="toy", class_weighting="enet"))


def test_evaluating_during_training_does_not_change_what_is_learnt(tmp_path) -> None:
    """eval_every is a bookkeeping setting (RESUMABLE_CHANGES): the weights must not depend on it."""
    data = Toy()
    quiet = run(toy_config(tmp_path, name="quiet", iters=6, eval_every=0), data, Toy(n=2, augment=False))
    watched = run(toy_config(tmp_path, name="watched", iters=6, eval_every=2), data, Toy(n=2, augment=False))
    assert len(watched.history["val"]) == 3 and len(quiet.history["val"]) == 1
    a, b = quiet.model.state_dict(), watched.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]
