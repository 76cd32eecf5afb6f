"""Tests for pspnet_edu/checks/training.py (the self-checks of notebook 07: optimiser, step, overfitting one batch)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pspnet_edu.checks.training import (
    ACCUMULATION_SLIPS,
    OVERFIT_LOSS,
    OVERFIT_LR,
    OVERFIT_SLIPS,
    OVERFIT_STEPS,
    _batches,
    _overfit_config,
    _overfit_model,
    _recipe_run,
    _slipped_run,
    VOID_HINT,
    check_accumulated_step,
    check_optimizer,
    check_overfit_one_batch,
    check_training_step,
)
from pspnet_edu.training import build_optimizer, train_step

# ------------------------------------------------------------------ the optimiser


def groups_by_name(model, config, mult=None):
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    new = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    mult = config.head_lr_mult if mult is None else mult
    return [{"params": backbone, "lr": config.lr}, {"params": new, "lr": config.lr * mult}]


def sgd(groups, config):
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def poly(optimizer, config):
    return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=config.iters, power=config.power)


def right_optimizer(model, config):
    optimizer = sgd(groups_by_name(model, config), config)
    return optimizer, poly(optimizer, config)


def test_right_optimizer_passes(capsys):
    def my_optimizer(model, config):
        return right_optimizer(model, config)

    check_optimizer(my_optimizer)
    assert capsys.readouterr().out == "✓ my_optimizer matches pspnet_edu.training.optim.build_optimizer on 4 cases\n"


def test_a_lambda_lr_poly_schedule_is_right_too(capsys):
    def my_optimizer(model, config):
        optimizer = sgd(groups_by_name(model, config), config)
        factor = lambda step: (1 - min(step, config.iters) / config.iters) ** config.power  # noqa: E731
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    check_optimizer(my_optimizer)
    assert capsys.readouterr().out.startswith("✓ my_optimizer matches")


def by_modules(model, config):
    new = [*model.ppm.parameters(), *model.head.parameters(), *model.aux_head.parameters()]
    optimizer = sgd([{"params": list(model.backbone.parameters()), "lr": config.lr},
                     {"params": new, "lr": config.lr * config.head_lr_mult}], config)
    return optimizer, poly(optimizer, config)


def by_position(model, config):
    params = list(model.parameters())
    optimizer = sgd([{"params": params[:60], "lr": config.lr},
                     {"params": params[60:], "lr": config.lr * config.head_lr_mult}], config)
    return optimizer, poly(optimizer, config)


def ppm_as_backbone(model, config):
    backbone = [p for n, p in model.named_parameters() if n.startswith(("backbone.", "ppm."))]
    new = [p for n, p in model.named_parameters() if not n.startswith(("backbone.", "ppm."))]
    optimizer = sgd([{"params": backbone, "lr": config.lr}, {"params": new, "lr": config.lr * config.head_lr_mult}],
                    config)
    return optimizer, poly(optimizer, config)


def swapped(model, config):
    backbone, new = groups_by_name(model, config)
    optimizer = sgd([new, backbone], config)
    return optimizer, poly(optimizer, config)


def one_rate(model, config):
    optimizer = sgd(groups_by_name(model, config, mult=1.0), config)
    return optimizer, poly(optimizer, config)


def fixed_numbers(model, config):
    optimizer = torch.optim.SGD(groups_by_name(model, config), lr=config.lr, momentum=0.9, weight_decay=1e-4)
    return optimizer, poly(optimizer, config)


def no_schedule(model, config):
    optimizer = sgd(groups_by_name(model, config), config)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def wrong_length(model, config):
    optimizer = sgd(groups_by_name(model, config), config)
    return optimizer, torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=2 * config.iters, power=config.power)


def paper_power(model, config):
    optimizer = sgd(groups_by_name(model, config), config)
    return optimizer, torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=config.iters, power=0.9)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (by_modules, "lacks a module yours expects"),  # aux=False: model.aux_head is None
        (by_position, "group 0 (the backbone): it lacks"),  # ResNet-34 has more than 60 tensors
        (ppm_as_backbone, "which belong in the other group"),
        (swapped, "the two groups are swapped"),
        (one_rate, "head_lr_mult times faster"),
        (fixed_numbers, "momentum expected 0.8"),
        (no_schedule, "the rates never change"),
        (wrong_length, "must reach 0 after config.iters = 12 steps"),
        (paper_power, "with power 2.0"),
        (lambda model, config: torch.optim.SGD(model.parameters(), lr=config.lr), "must return (optimizer, scheduler)"),
    ],
)
def test_plausible_optimizer_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_optimizer(wrong)
    assert hint in str(info.value), str(info.value)


def test_by_modules_fails_on_the_no_ppm_twin():
    with pytest.raises(AssertionError, match=r"by_modules\(model, config\)  \[a model built without the auxiliary head.*raised AttributeError"):
        check_optimizer(by_modules)


# ------------------------------------------------------------------ one training step


def right_step(model, images, masks, optimizer, scheduler, alpha):
    outputs = model(images)
    loss = (F.cross_entropy(outputs["out"], masks, ignore_index=255)
            + alpha * F.cross_entropy(outputs["aux"], masks, ignore_index=255))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item()


def test_right_step_passes_and_leaves_the_global_rng_alone(capsys):
    def my_training_step(model, images, masks, optimizer, scheduler, alpha):
        return right_step(model, images, masks, optimizer, scheduler, alpha)

    state = torch.get_rng_state()
    check_training_step(my_training_step)
    assert capsys.readouterr().out == "✓ my_training_step matches pspnet_edu.training.train_step on 2 cases\n"
    assert torch.equal(torch.get_rng_state(), state)


def test_a_step_returning_the_loss_tensor_passes(capsys):
    def my_training_step(model, images, masks, optimizer, scheduler, alpha):
        right_step(model, images, masks, optimizer, scheduler, alpha)
        return torch.tensor(0.0)  # wrong value, right type: caught as a wrong loss below

    with pytest.raises(AssertionError, match="returned the loss 0 after step 1"):
        check_training_step(my_training_step)


def step_with(loss_of, *, zero_grad=True, scheduler_first=False, schedule=True, update=True, ignore=255):
    def step(model, images, masks, optimizer, scheduler, alpha):
        outputs = model(images)
        main = F.cross_entropy(outputs["out"], masks, ignore_index=ignore)
        aux = F.cross_entropy(outputs["aux"], masks, ignore_index=ignore)
        loss = loss_of(main, aux, alpha)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if scheduler_first and schedule:
            scheduler.step()
        if update:
            optimizer.step()
        if schedule and not scheduler_first:
            scheduler.step()
        return loss.item()

    return step


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (step_with(lambda main, aux, alpha: main), "The auxiliary loss is missing"),
        (step_with(lambda main, aux, alpha: main + 0.4 * aux), "use it, not the constant 0.4"),
        (step_with(lambda main, aux, alpha: alpha * main + aux), "alpha weighs the AUXILIARY loss"),
        (step_with(lambda main, aux, alpha: main + alpha * aux, zero_grad=False), "gradients accumulate"),
        (step_with(lambda main, aux, alpha: main + alpha * aux, scheduler_first=True), "AFTER optimizer.step()"),
        (step_with(lambda main, aux, alpha: main + alpha * aux, schedule=False), "the scheduler was not stepped"),
        (step_with(lambda main, aux, alpha: main + alpha * aux, update=False), "did not change the weights"),
        (step_with(lambda main, aux, alpha: main + alpha * aux, ignore=-100), "pass ignore_index=255"),
    ],
)
def test_plausible_step_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_training_step(wrong)
    assert hint in str(info.value), str(info.value)


def test_a_step_that_returns_nothing_is_told_to_return_the_loss():
    def my_training_step(model, images, masks, optimizer, scheduler, alpha):
        right_step(model, images, masks, optimizer, scheduler, alpha)

    with pytest.raises(AssertionError, match="returned None after step 1 of 2: return the loss"):
        check_training_step(my_training_step)


# ------------------------------------------------------------------ overfit one batch


def overfit(model, images, masks, config, slips=()):
    """A learner's loop, written independently of the check's ``_slipped_run``, with optional planted bugs."""
    if "one group" in slips:
        optimizer = sgd(model.parameters(), config)
    else:
        optimizer = sgd(groups_by_name(model, config), config)
    scheduler = poly(optimizer, config)
    losses = []
    for _ in range(config.iters):
        outputs = model(images)
        main = F.cross_entropy(outputs["out"], masks, ignore_index=255)
        if "aux without gradient" in slips:
            with torch.no_grad():
                aux = F.cross_entropy(outputs["aux"], masks, ignore_index=255)
        else:
            aux = F.cross_entropy(outputs["aux"], masks, ignore_index=255)
        loss = main + config.alpha * aux
        if "no zero_grad" not in slips:
            optimizer.zero_grad()
        loss.backward()
        if "scheduler first" in slips:
            scheduler.step()
        optimizer.step()
        if "scheduler first" not in slips:
            scheduler.step()
        losses.append(loss.item())
    return losses


def test_the_checks_hand_written_recipe_is_the_packages():
    images, masks = _batches(3, 1)[0]
    config = _overfit_config(4, 0.05)
    ours, theirs = _overfit_model(), _overfit_model()
    assert _slipped_run(ours, images, masks, config, frozenset()) == pytest.approx(
        _recipe_run(theirs, images, masks, config), rel=1e-5)
    for key, value in ours.state_dict().items():
        torch.testing.assert_close(value, theirs.state_dict()[key], rtol=1e-4, atol=1e-6, msg=key)


def test_each_planted_bug_alone_fails_to_overfit_and_the_recipe_does():
    images, masks = _batches(3, 1)[0]
    config = _overfit_config(OVERFIT_STEPS, OVERFIT_LR)
    assert overfit(_overfit_model(), images, masks, config)[-1] < OVERFIT_LOSS / 2  # a margin for other CPUs
    for slip in ("aux without gradient", "one group", "no zero_grad"):
        assert not overfit(_overfit_model(), images, masks, config, (slip,))[-1] < OVERFIT_LOSS * 1.5, slip


def test_right_overfit_passes(capsys):
    def my_overfit_one_batch(model, images, masks, config):
        return overfit(model, images, masks, config)

    check_overfit_one_batch(my_overfit_one_batch)
    assert capsys.readouterr().out == ("✓ my_overfit_one_batch matches pspnet_edu.training.train_step on 3 steps, "
                                       "and overfits one batch in 100 steps\n")


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # the slip itself
@pytest.mark.parametrize(
    "slips",
    [("aux without gradient",), ("one group",), ("no zero_grad",), ("scheduler first",),
     ("aux without gradient", "one group", "no zero_grad")],  # the notebook's loop: all three named at once
)
def test_overfit_slips_are_each_named(slips):
    def my_overfit_one_batch(model, images, masks, config):
        return overfit(model, images, masks, config, slips)

    with pytest.raises(AssertionError) as info:
        check_overfit_one_batch(my_overfit_one_batch)
    message = str(info.value)
    assert f"still wrong ({len(slips)})" in message, message
    for slip in slips:
        assert OVERFIT_SLIPS[slip] in message, (slip, message)


def test_overfit_that_returns_no_losses_or_the_wrong_ones_is_told():
    def returns_nothing(model, images, masks, config):
        overfit(model, images, masks, config)

    with pytest.raises(AssertionError, match="return a list of the 3 losses"):
        check_overfit_one_batch(returns_nothing)

    def rounded_losses(model, images, masks, config):
        return [round(loss, 1) for loss in overfit(model, images, masks, config)]

    with pytest.raises(AssertionError, match="computed before its update"):
        check_overfit_one_batch(rounded_losses)


def test_overfit_stub_and_shortcut_are_refused():
    def my_overfit_one_batch(model, images, masks, config):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        check_overfit_one_batch(my_overfit_one_batch)

    def my_shortcut(model, images, masks, config):
        optimizer, scheduler = build_optimizer(model, config)
        return [train_step(model, images, masks, optimizer, scheduler)["loss"].item() for _ in range(config.iters)]

    with pytest.raises(AssertionError, match="write it yourself"):
        check_overfit_one_batch(my_shortcut)


# ------------------------------------------------------------------ gradient accumulation

ACCUMULATION_PASSED = "✓ my_accumulated_step matches pspnet_edu.training.train_step on the whole batch on 3 cases\n"


def accumulate(*, weight="share", zero_grad="once", backward="each", steps="once", split="count", skip_void=True,
               weigh_aux=True, returns="batch", count_dtype=None, train_mode=False):
    """An accumulated step, right with the defaults; each argument plants one slip."""

    def my_accumulated_step(model, images, masks, optimizer, scheduler, alpha, chunks):
        if train_mode:
            model.train()
        labelled = (masks != 255).sum()
        if zero_grad == "once":
            optimizer.zero_grad()
        pieces = images.split(chunks) if split == "size" else [images] if split == "none" else images.tensor_split(chunks)
        targets = masks.split(chunks) if split == "size" else [masks] if split == "none" else masks.tensor_split(chunks)
        total, means, pending = 0.0, [], []
        for x, y in zip(pieces, targets):
            count = (y != 255).sum()
            share = count.to(count_dtype) / labelled.to(count_dtype) if count_dtype else count / labelled
            if skip_void and count == 0:
                continue
            outputs = model(x)
            loss = (F.cross_entropy(outputs["out"], y, ignore_index=255)
                    + (alpha if weigh_aux else 1.0) * F.cross_entropy(outputs["aux"], y, ignore_index=255))
            scaled = {"share": share, "1/k": 1 / chunks, "crops": len(x) / len(images), "none": 1.0}[weight] * loss
            if zero_grad == "per chunk":
                optimizer.zero_grad()
            if backward == "each":
                scaled.backward()
            else:
                pending.append(scaled)
            total += (share * loss).item()
            means.append(loss.item())
            if steps == "per chunk":
                optimizer.step()
                scheduler.step()
            elif steps == "schedule per chunk":
                scheduler.step()
        if pending:
            sum(pending).backward()
        if steps in ("once", "schedule per chunk"):
            optimizer.step()
        if steps == "once":
            scheduler.step()
        return {"batch": total, "mean of chunks": sum(means) / max(len(means), 1), "nothing": None}[returns]

    return my_accumulated_step


def test_right_accumulation_passes_and_leaves_the_dtype_and_rng_alone(capsys):
    state = torch.get_rng_state()
    check_accumulated_step(accumulate())
    assert capsys.readouterr().out == ACCUMULATION_PASSED
    assert torch.get_default_dtype() == torch.float32 and torch.equal(torch.get_rng_state(), state)


def test_a_summed_loss_over_the_batchs_labelled_pixels_is_right_too(capsys):
    """reduction='sum' divided by the batch's count: an all-void chunk gives 0, no NaN, no special case."""

    def my_accumulated_step(model, images, masks, optimizer, scheduler, alpha, chunks):
        labelled = (masks != 255).sum()
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for x, y in zip(images.chunk(chunks), masks.chunk(chunks)):
            outputs = model(x)
            loss = (F.cross_entropy(outputs["out"], y, ignore_index=255, reduction="sum")
                    + alpha * F.cross_entropy(outputs["aux"], y, ignore_index=255, reduction="sum")) / labelled
            loss.backward()
            total += loss.item()
        optimizer.step()
        scheduler.step()
        return torch.tensor(total)

    check_accumulated_step(my_accumulated_step)
    assert capsys.readouterr().out == ACCUMULATION_PASSED


@pytest.mark.parametrize(
    ("slip", "message"),
    [
        ({"weight": "1/k"}, ACCUMULATION_SLIPS["1/k"]),
        ({"weight": "crops"}, ACCUMULATION_SLIPS["crops"]),
        ({"weight": "none"}, ACCUMULATION_SLIPS["sum"]),
        ({"weigh_aux": False}, ACCUMULATION_SLIPS["alpha"]),
        ({"zero_grad": "per chunk"}, ACCUMULATION_SLIPS["zero_grad per chunk"]),
        ({"zero_grad": "never"}, ACCUMULATION_SLIPS["no zero_grad"]),
        ({"backward": "once"}, "kept several chunks' graphs alive at once"),
        ({"steps": "per chunk"}, "called optimizer.step() 3 times in one call"),
        ({"steps": "schedule per chunk"}, "the poly schedule counts updates, not chunks"),
        ({"split": "size"}, "chunks is the NUMBER of pieces"),
        ({"split": "none"}, "ran the model on 5 crops at once"),
        ({"train_mode": True}, "ran the model in training mode"),
        ({"skip_void": False}, VOID_HINT),
        ({"count_dtype": torch.float32}, "agree only to float32 precision"),
        ({"returns": "mean of chunks"}, "That is the plain mean of the chunks' losses"),
        ({"returns": "nothing"}, "returned None (step 1 of 2)"),
    ],
)
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # the slip itself
def test_accumulation_slips_are_named(slip, message):
    with pytest.raises(AssertionError) as info:
        check_accumulated_step(accumulate(**slip))
    assert message in str(info.value), str(info.value)


def test_accumulation_stub_and_shortcut_are_refused():
    def my_accumulated_step(model, images, masks, optimizer, scheduler, alpha, chunks):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        check_accumulated_step(my_accumulated_step)

    def my_shortcut(model, images, masks, optimizer, scheduler, alpha, chunks):
        return train_step(model, images, masks, optimizer, scheduler, alpha)["loss"].item()

    with pytest.raises(AssertionError, match="write it yourself"):
        check_accumulated_step(my_shortcut)
