"""Tests for pspnet_edu/checks/training.py (the self-checks of notebook 07: optimiser, training step)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pspnet_edu.checks.training import check_optimizer, check_training_step

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
