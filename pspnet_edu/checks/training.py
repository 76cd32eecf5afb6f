"""Self-checks for notebooks/07_training.ipynb: the optimiser and one training step.

- :func:`check_optimizer`: ``my_optimizer(model, config)`` -> ``(optimizer, scheduler)``: SGD
  over two parameter groups chosen by module name (``backbone.*`` at ``config.lr``, the PPM and
  both heads at ``config.head_lr_mult`` times it), momentum and weight decay from the config,
  and the poly schedule over ``config.iters`` steps; against
  :func:`pspnet_edu.training.build_optimizer`. Compared: which parameters are in which group,
  each group's rate, momentum and weight decay, and both groups' rates after every step of the
  schedule. The cases include the no-PPM twin and a model without the auxiliary head, so
  groups picked by listing modules or by position fail.
- :func:`check_training_step`: ``my_training_step(model, images, masks, optimizer, scheduler,
  alpha)`` -> the loss of the batch, against the trainer's own step
  (:func:`pspnet_edu.training.train_step`, what ``train`` runs at every iteration): forward, the
  loss ``main + alpha * aux`` (cross-entropy, 255 ignored; paper Sec. 4, "Deep Supervision for
  ResNet-Based FCN"), ``zero_grad``, ``backward``, ``optimizer.step()``, ``scheduler.step()``.
  Both start from the same weights and the same optimiser, see the same batches (two steps in
  the first case, one in the second) and the same dropout seed; compared after each step: the
  returned loss, the rates of both groups, and every weight and BatchNorm statistic of the model.
- :func:`check_accumulated_step`: ``my_accumulated_step(model, images, masks, optimizer, scheduler, alpha,
  chunks)`` -> the batch's loss, one update from a batch run in ``chunks`` pieces (gradient
  accumulation), against :func:`pspnet_edu.training.train_step` on the whole batch: three cases
  (2+2+1 and 1+1+1+1+1 crops, void shares from 0 to 100 % per crop, alpha 0.4 and 0), two
  consecutive updates each, in float64 with the model in eval mode (in training mode BatchNorm
  normalises each chunk by its own statistics, and no accumulation equals the whole batch);
  compared after each update to 1e-10: every weight, both rates, the returned loss. Hooks on
  the model and the optimiser also require one chunk per forward pass, each chunk's backward
  before the next forward, and one ``optimizer.step()``; a wrong update is told which slip it
  matches (chunks weighed 1/k or by crops instead of by labelled pixels, no weights, alpha
  missing, gradients cleared per chunk or not at all), a NaN the all-void chunk.
- :func:`check_overfit_one_batch`: ``my_overfit_one_batch(model, images, masks, config)`` ->
  the ``config.iters`` losses of training on one fixed batch, the learner's repair of a loop
  with planted bugs. First 3 steps from the same weights as the package's own recipe
  (:func:`pspnet_edu.training.build_optimizer`, then :func:`pspnet_edu.training.train_step` at
  every step): every weight and the returned losses must match, and when they do not, the
  slips whose simulated run gives the learner's weights are named, each on its own line (the
  auxiliary loss without a gradient, one parameter group, no ``zero_grad``, the scheduler
  stepped first). Then the sanity check of Karpathy's "A Recipe for Training Neural Networks"
  (2019): 100 steps on one batch must bring the loss below :data:`OVERFIT_LOSS`.

While the learner's code runs, the package's versions are hidden (``*_HIDDEN`` below,
:func:`pspnet_edu.checks._core.hidden`): ``param_groups`` and ``build_optimizer`` (the groups
and the schedule are the exercise) and ``pspnet_loss`` (the loss is part of the step). torch's
``SGD``, ``PolynomialLR`` and ``F.cross_entropy`` are the bricks and stay available.

The poly policy and the optimiser's settings are the paper's (Zhao et al. 2017, Sec. 5.1
"Implementation Details"); the 10x rate of the new layers is the author's code (hszhao/semseg).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pspnet_edu.checks._core import (
    differences,
    hidden,
    learner_code,
    learner_name,
    passed,
    refuse_reference,
    require_callable,
    short_repr,
)
from pspnet_edu.constants import IGNORE_INDEX
from pspnet_edu.loss import pspnet_loss
from pspnet_edu.pspnet import PSPNet, preset_config
from pspnet_edu.training import train_step
from pspnet_edu.training.config import TrainConfig
from pspnet_edu.training.optim import build_optimizer, param_groups

# What each check hides while the learner's code runs.
OPTIMIZER_HIDDEN = (build_optimizer, param_groups)
TRAINING_STEP_HIDDEN = (train_step, pspnet_loss, param_groups, build_optimizer)
OVERFIT_HIDDEN = TRAINING_STEP_HIDDEN

NUM_CLASSES = 19  # the Cityscapes classes, as in the lesson
SIZE = (48, 56)  # (H, W) of the check's images: the tiny preset needs >= 41 px for its 6x6 bin
RTOL, ATOL = 1e-4, 1e-6  # weights after two SGD steps: a different (right) order of float ops stays far below


def _model(seed: int = 0, **fields: Any) -> PSPNet:
    """The tiny preset with 19 classes, seeded; ``fields`` change its configuration."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return PSPNet(preset_config("tiny", num_classes=NUM_CLASSES, **fields))


# ------------------------------------------------------------------ the optimiser

OPTIMIZER_HINT = ("Two groups by parameter NAME (model.named_parameters()): those starting with 'backbone.' at "
                  "config.lr, all the others (PPM, head, aux_head) at config.lr * config.head_lr_mult; SGD with the "
                  "config's momentum and weight decay; a poly schedule (PolynomialLR) over config.iters steps with "
                  "power config.power.")


def _optimizer_cases() -> tuple[tuple[str, Callable[[], nn.Module], TrainConfig], ...]:
    """(what the case is about, a model factory, the config)."""
    return (
        ("the tiny PSPNet with the course's settings", lambda: _model(), TrainConfig(iters=12)),
        ("the no-PPM twin (the dilated FCN): its .ppm is an empty nn.Identity", lambda: _model(use_ppm=False),
         TrainConfig(iters=12)),
        ("a model built without the auxiliary head (aux=False)", lambda: _model(aux=False),
         TrainConfig(iters=8, lr=0.02, head_lr_mult=5.0)),
        ("a deeper backbone (ResNet-34) and other settings: every number must come from the config",
         lambda: _model(depth=34),
         TrainConfig(iters=10, lr=0.005, head_lr_mult=4.0, momentum=0.8, weight_decay=5e-4, power=2.0)),
    )


def _group_summary(optimizer: torch.optim.Optimizer, names: dict[int, str]) -> list[dict[str, Any]]:
    return [{"params": sorted(names.get(id(p), "<not a parameter of the model>") for p in g["params"]),
             "lr": g["lr"], "momentum": g.get("momentum"), "weight_decay": g.get("weight_decay")}
            for g in optimizer.param_groups]


def _rates(optimizer: torch.optim.Optimizer, scheduler: Any, steps: int) -> list[list[float]]:
    """Every group's rate before the first step and after each of ``steps`` scheduler steps."""
    rates = [[g["lr"] for g in optimizer.param_groups]]
    for _ in range(steps):
        optimizer.step()  # no gradients: the weights do not move, but the scheduler sees a step
        scheduler.step()
        rates.append([g["lr"] for g in optimizer.param_groups])
    return rates


def _group_problem(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> str | None:
    """A sentence naming what is wrong with the learner's groups, or None if they match."""
    labels = ("group 0 (the backbone)", "group 1 (PPM and heads)")
    if len(got) != len(expected):
        return (f"expected {len(expected)} parameter groups (the backbone, then the PPM and heads), got {len(got)}. "
                + OPTIMIZER_HINT)
    wanted = {name for group in expected for name in group["params"]}
    found = [name for group in got for name in group["params"]]
    missing = sorted(wanted - set(found))
    if missing:
        return (f"{len(missing)} parameters are in no group, e.g. {missing[:3]}: pick the groups by the parameter "
                "NAMES (model.named_parameters()), not by listing modules or positions, which miss parameters when "
                "the model changes. " + OPTIMIZER_HINT)
    for index, (label, want, have) in enumerate(zip(labels, expected, got)):
        if want["params"] != have["params"]:
            if len(got) == 2 and want["params"] == got[1 - index]["params"]:
                return "the two groups are swapped: the backbone group first, then the PPM and heads. " + OPTIMIZER_HINT
            extra = sorted(set(have["params"]) - set(want["params"]))
            lacking = sorted(set(want["params"]) - set(have["params"]))
            detail = f"it holds {extra[:2]}, which belong in the other group" if extra else f"it lacks {lacking[:2]}"
            return f"{label}: {detail}. " + OPTIMIZER_HINT
    for label, want, have in zip(labels, expected, got):
        for key, what in (("lr", "learning rate"), ("momentum", "momentum"), ("weight_decay", "weight decay")):
            if differences(want[key], have[key], rtol=1e-9, atol=1e-15) is not None:
                why = ""
                if key == "lr" and label.startswith("group 1") and have[key] == expected[0]["lr"]:
                    why = " (the new layers learn head_lr_mult times faster than the backbone)"
                return f"{label}: {what} expected {want[key]!r}, got {short_repr(have[key])}{why}. " + OPTIMIZER_HINT
    return None


def _schedule_problem(expected: list[list[float]], got: list[list[float]], config: TrainConfig) -> str | None:
    for step, (want, have) in enumerate(zip(expected, got)):
        if differences(want, have, rtol=1e-7, atol=1e-12) is None:
            continue
        if step > 0 and differences(got[0], have, rtol=1e-9, atol=1e-15) is None:
            why = "the rates never change: the poly schedule is missing"
        elif any(abs(v) > 1e-12 for v in got[-1]):
            why = (f"the rates must reach 0 after config.iters = {config.iters} steps (they end at "
                   f"{[f'{v:.3g}' for v in got[-1]]}): total_iters=config.iters")
        else:
            why = f"poly: lr = base * (1 - step / config.iters) ** config.power, with power {config.power}"
        return (f"after {step} scheduler steps the rates of the two groups should be {[f'{v:.6g}' for v in want]}, "
                f"got {[f'{v:.6g}' for v in have]}: {why}. " + OPTIMIZER_HINT)
    return None


def check_optimizer(my_optimizer: Callable[[nn.Module, TrainConfig], tuple[Any, Any]]) -> None:
    """Check ``my_optimizer(model, config)`` -> ``(optimizer, scheduler)`` on 4 models and configs.

    >>> def my_optimizer(model, config):
    ...     backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    ...     new = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    ...     groups = [{"params": backbone, "lr": config.lr},
    ...               {"params": new, "lr": config.lr * config.head_lr_mult}]
    ...     optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
    ...                                 weight_decay=config.weight_decay)
    ...     scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=config.iters, power=config.power)
    ...     return optimizer, scheduler
    >>> check_optimizer(my_optimizer)
    ✓ my_optimizer matches pspnet_edu.training.optim.build_optimizer on 4 cases
    """
    require_callable(my_optimizer)
    name = learner_name(my_optimizer)
    refuse_reference(my_optimizer, OPTIMIZER_HIDDEN, name)
    cases = _optimizer_cases()
    prepared = []
    for about, make_model, config in cases:  # the expected values first: the reference needs what is hidden
        model = make_model()
        names = {id(p): n for n, p in model.named_parameters()}
        optimizer, scheduler = build_optimizer(model, config)
        prepared.append((about, model, config, names, _group_summary(optimizer, names),
                         _rates(optimizer, scheduler, config.iters)))
    with hidden(*OPTIMIZER_HIDDEN) as hiding:
        for about, model, config, names, expected_groups, expected_rates in prepared:
            call = f"{name}(model, config)  [{about}]"
            with learner_code(name, call, hiding):
                try:
                    result = my_optimizer(model, config)
                except AttributeError as error:  # e.g. model.aux_head.parameters() on a model without one
                    raise AssertionError(
                        f"{call} raised AttributeError: {error}\n  hint: this model lacks a module yours expects: "
                        f"pick the groups by parameter NAME, which works for any model. {OPTIMIZER_HINT}") from error
            if not (isinstance(result, tuple) and len(result) == 2):
                raise AssertionError(f"{call} must return (optimizer, scheduler), got {short_repr(result)}.\n"
                                     f"  hint: {OPTIMIZER_HINT}")
            optimizer, scheduler = result
            if not isinstance(optimizer, torch.optim.Optimizer) or not callable(getattr(scheduler, "step", None)):
                raise AssertionError(f"{call} must return (a torch.optim optimizer, a scheduler with .step()), got "
                                     f"({type(optimizer).__name__}, {type(scheduler).__name__}).\n  hint: {OPTIMIZER_HINT}")
            problem = _group_problem(expected_groups, _group_summary(optimizer, names))
            if problem is None:
                with learner_code(name, f"scheduler.step() of {call}", hiding):
                    got_rates = _rates(optimizer, scheduler, config.iters)
                problem = _schedule_problem(expected_rates, got_rates, config)
            if problem is not None:
                raise AssertionError(f"{call} gave a wrong optimizer.\n  hint: {problem}")
    passed(name, "pspnet_edu.training.optim.build_optimizer", len(cases))


# ------------------------------------------------------------------ one training step

STEP_HINT = ("The step, in order: forward (outputs['out'], outputs['aux']); loss = main + alpha * aux, both "
             "F.cross_entropy with ignore_index=255; optimizer.zero_grad(); loss.backward(); optimizer.step(); "
             "scheduler.step(); return the loss as a number.")


def _batches(seed: int, count: int) -> list[tuple[Tensor, Tensor]]:
    """``count`` batches of 2 normalised-looking images (2, 3, H, W) and trainId masks (2, H, W) with void rows."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        images = torch.randn(2, 3, *SIZE, generator=generator)
        coarse = torch.randint(0, NUM_CLASSES, (2, 1, 6, 7), generator=generator).float()
        masks = F.interpolate(coarse, size=SIZE, mode="nearest")[:, 0].long()  # blocky regions, (2, H, W)
        masks[:, :3] = IGNORE_INDEX  # void pixels: they must not count
        batches.append((images, masks))
    return batches


# (what the case is about, model fields, alpha, data seed, steps). Two steps show what one cannot
# (gradients left over from the step before, the schedule's second rate); the second case checks alpha.
_STEP_CASES = (
    ("the tiny PSPNet, alpha 0.4 (the paper's weight)", {}, 0.4, 1, 2),
    ("the no-PPM twin, alpha 1.0", {"use_ppm": False}, 1.0, 2, 1),
)


def _config(alpha: float) -> TrainConfig:
    # 4 iterations: the poly rate falls visibly at every step; channels_last off: the model is used as given.
    return TrainConfig(iters=4, lr=0.01, alpha=alpha, channels_last=False)


def _package_step(model: nn.Module, optimizer: Any, scheduler: Any, config: TrainConfig,
                  images: Tensor, masks: Tensor) -> float:
    """One step of the trainer's recipe, :func:`pspnet_edu.training.train_step`."""
    return float(train_step(model, images, masks, optimizer, scheduler, config.alpha)["loss"])


def _variant_step(model: nn.Module, optimizer: Any, scheduler: Any, images: Tensor, masks: Tensor, alpha: float,
                  variant: str) -> float:
    """A step with one known slip, to name the learner's (used only after a mismatch)."""
    outputs = model(images)
    main = F.cross_entropy(outputs["out"], masks, ignore_index=IGNORE_INDEX)
    aux = F.cross_entropy(outputs["aux"], masks, ignore_index=IGNORE_INDEX)
    loss = {"no aux": main, "alpha 0.4": main + 0.4 * aux, "alpha on main": alpha * main + aux}.get(variant,
                                                                                                 main + alpha * aux)
    if variant != "no zero_grad":
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if variant == "scheduler first":
        scheduler.step()
        optimizer.step()
    else:
        optimizer.step()
        scheduler.step()
    return float(loss)


VARIANTS = {
    "no aux": "The auxiliary loss is missing: add alpha * the cross-entropy of outputs['aux'].",
    "alpha 0.4": "alpha is an argument: use it, not the constant 0.4.",
    "alpha on main": "alpha weighs the AUXILIARY loss: main + alpha * aux.",
    "no zero_grad": "The first step matches but the second does not: gradients accumulate across steps unless you "
                    "call optimizer.zero_grad() before loss.backward().",
    "scheduler first": "Step the scheduler AFTER optimizer.step(): the first update must use the base rates.",
}


def _snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _run(step: Callable[..., Any], model: nn.Module, optimizer: Any, scheduler: Any,
         batches: Sequence[tuple[Tensor, Tensor]], seed: int) -> list[tuple[Any, list[float], dict[str, Tensor]]]:
    """(returned loss, rates of both groups, weights) after each batch; dropout seeded the same for every run."""
    after = []
    for index, (images, masks) in enumerate(batches):
        torch.default_generator.manual_seed(seed + index)
        loss = step(model, optimizer, scheduler, images.clone(), masks.clone())
        after.append((loss, [g["lr"] for g in optimizer.param_groups], _snapshot(model)))
    return after


def _fresh(fields: dict[str, Any], config: TrainConfig) -> tuple[nn.Module, Any, Any]:
    model = _model(**fields).train()
    optimizer, scheduler = build_optimizer(model, config)
    return model, optimizer, scheduler


def _part(key: str) -> str:
    first = key.split(".")[0]
    return {"backbone": "the backbone", "ppm": "the PPM", "head": "the main head",
            "aux_head": "the auxiliary head"}.get(first, first)


def _weights_problem(expected: dict[str, Tensor], got: dict[str, Tensor]) -> str | None:
    for key, want in expected.items():
        if want.shape == got[key].shape and torch.allclose(want.double(), got[key].double(), rtol=RTOL, atol=ATOL):
            continue  # the usual case, decided quickly
        detail = differences(want, got[key], rtol=RTOL, atol=ATOL)
        if detail is not None:
            return f"{key} ({_part(key)}): {detail}"
    return None


def _as_float(loss: Any) -> float | None:
    if isinstance(loss, Tensor) and loss.numel() == 1:
        return float(loss.detach())
    if isinstance(loss, (int, float)) and not isinstance(loss, bool):
        return float(loss)
    return None


def check_training_step(my_training_step: Callable[..., Any]) -> None:
    """Check ``my_training_step(model, images, masks, optimizer, scheduler, alpha)`` against the trainer's step.

    Two cases (the tiny PSPNet at alpha 0.4, its no-PPM twin at alpha 1.0), two steps each;
    after each step the returned loss, both groups' rates and every weight must match.

    >>> def my_training_step(model, images, masks, optimizer, scheduler, alpha):
    ...     outputs = model(images)
    ...     loss = (F.cross_entropy(outputs["out"], masks, ignore_index=255)
    ...             + alpha * F.cross_entropy(outputs["aux"], masks, ignore_index=255))
    ...     optimizer.zero_grad()
    ...     loss.backward()
    ...     optimizer.step()
    ...     scheduler.step()
    ...     return loss.item()
    >>> check_training_step(my_training_step)
    ✓ my_training_step matches pspnet_edu.training.train_step on 2 cases
    """
    require_callable(my_training_step)
    name = learner_name(my_training_step)
    refuse_reference(my_training_step, TRAINING_STEP_HIDDEN, name)
    with torch.random.fork_rng(devices=[]):  # the dropout seeds below leave the caller's RNG as it was
        prepared = []
        for about, fields, alpha, seed, steps in _STEP_CASES:  # the trainer's steps first: they need what is hidden
            config = _config(alpha)
            batches = _batches(seed, steps)
            model, optimizer, scheduler = _fresh(fields, config)
            start = {n: p.detach().clone() for n, p in model.named_parameters()}
            expected = _run(lambda m, o, s, x, y: _package_step(m, o, s, config, x, y), model, optimizer, scheduler,
                            batches, seed)
            prepared.append((about, fields, alpha, seed, config, batches, start, expected))
        for about, fields, alpha, seed, config, batches, start, expected in prepared:
            model, optimizer, scheduler = _fresh(fields, config)
            call = f"{name}(model, images, masks, optimizer, scheduler, alpha={alpha})  [{about}]"

            def learner(m: nn.Module, o: Any, s: Any, x: Tensor, y: Tensor) -> Any:
                try:
                    return my_training_step(m, x, y, o, s, alpha)
                except (IndexError, RuntimeError) as error:
                    if "out of bounds" in str(error):
                        raise AssertionError(
                            f"{call} raised {type(error).__name__}: {error}\n  hint: the masks hold 255 (void); "
                            f"pass ignore_index=255 to F.cross_entropy. {STEP_HINT}") from error
                    raise

            with hidden(*TRAINING_STEP_HIDDEN) as hiding, learner_code(name, call, hiding):
                got = _run(learner, model, optimizer, scheduler, batches, seed)
            problem, step = _step_problem(expected, got, start, config)
            if problem is not None:
                variant = _which_variant(fields, config, batches[:step], seed, got) if "other weights" in problem else None
                hints = [VARIANTS[variant]] if variant else []
                raise AssertionError(f"{call} {problem}\n  hint: {' '.join(hints + [STEP_HINT])}")
    passed(name, "pspnet_edu.training.train_step", len(_STEP_CASES))


def _step_problem(expected: list[Any], got: list[Any], start: dict[str, Tensor],
                  config: TrainConfig) -> tuple[str | None, int]:
    """What differs first, step by step (the weights, the rates, the returned loss), and at which step."""
    for step, ((want_loss, want_rates, want_weights), (got_loss, got_rates, got_weights)) in enumerate(
            zip(expected, got), start=1):
        where = f"after step {step} of {len(expected)}"
        if step == 1 and _weights_problem(start, {k: got_weights[k] for k in start}) is None:
            return f"did not change the weights ({where}): call loss.backward() and then optimizer.step().", step
        problem = _weights_problem(want_weights, got_weights)
        if problem is not None:
            return f"gave other weights than the trainer's step {where}: {problem}.", step
        if differences(want_rates, got_rates, rtol=1e-9, atol=1e-15) is not None:
            before = expected[step - 2][1] if step > 1 else _initial_rates(config)
            why = ("the scheduler was not stepped: call scheduler.step() once, after optimizer.step()"
                   if differences(before, got_rates, rtol=1e-9, atol=1e-15) is None
                   else "step the scheduler exactly once per training step")
            return (f"left the learning rates at {[f'{v:.6g}' for v in got_rates]} {where}, expected "
                    f"{[f'{v:.6g}' for v in want_rates]}: {why}."), step
        value = _as_float(got_loss)
        if value is None:
            return (f"returned {short_repr(got_loss)} {where}: return the loss of the batch (main + alpha * aux, "
                    "computed before the update) as a number, e.g. loss.item()."), step
        if not math.isclose(value, want_loss, rel_tol=1e-5, abs_tol=1e-7):
            return (f"returned the loss {value:.6g} {where}, expected {want_loss:.6g}: return main + alpha * aux, "
                    "the loss that was back-propagated."), step
    return None, len(expected)


def _initial_rates(config: TrainConfig) -> list[float]:
    return [config.lr, config.lr * config.head_lr_mult]


def _which_variant(fields: dict[str, Any], config: TrainConfig, batches: Sequence[tuple[Tensor, Tensor]], seed: int,
                   got: list[Any]) -> str | None:
    """The known slip whose weights, up to the step that failed, equal the learner's (None if none does).

    A slip that shows at the first step only, or at the second only ("no zero_grad"), is tried
    only where it can show.
    """
    candidates = ["no zero_grad"] if len(batches) > 1 else [v for v in VARIANTS if v != "no zero_grad"]
    for variant in candidates:
        if variant == "alpha 0.4" and config.alpha == 0.4:
            continue
        model, optimizer, scheduler = _fresh(fields, config)
        with contextlib.suppress(Exception), _quiet():
            slipped = _run(lambda m, o, s, x, y: _variant_step(m, o, s, x, y, config.alpha, variant), model,
                           optimizer, scheduler, batches, seed)
            if all(_weights_problem(w, g[2]) is None for (_, _, w), g in zip(slipped, got)):
                return variant
    return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No warning from the slipped steps (PyTorch warns when the scheduler steps before the optimizer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ------------------------------------------------------------------ gradient accumulation

ACCUMULATION_HIDDEN = TRAINING_STEP_HIDDEN
ACCUMULATION_RTOL, ACCUMULATION_ATOL = 1e-10, 1e-12  # float64: a right accumulation agrees to about 1e-11 (measured)

# (what the case is about, chunks, alpha, weight decay, data seed, the void share of each of the 5 crops at each
# of 2 consecutive steps: the second shows gradients left over from the first). The void shares differ from crop
# to crop: weighing the chunks alike, or by their number of crops, is wrong.
_ACCUMULATION_CASES = (
    ("chunks=3 (2+2+1 crops), alpha 0.4, crops from 0 % to 95 % void", 3, 0.4, 1e-4, 11,
     ((0.0, 0.8, 0.3, 0.95, 0.5), (0.6, 0.1, 0.9, 0.0, 0.4))),
    ("chunks=5 (1+1+1+1+1 crops), alpha 0.4, one crop entirely void: a chunk without a labelled pixel", 5, 0.4, 1e-4,
     12, ((0.2, 0.0, 1.0, 0.7, 0.5), (1.0, 0.3, 0.0, 0.85, 0.6))),
    # Weight decay 0 here: at alpha 0 train_step leaves the auxiliary head out of the graph (no gradient, so SGD
    # skips it), while main + 0 * aux gives it a zero gradient, which weight decay would turn into an update.
    ("chunks=3 (2+2+1 crops), alpha 0, the last chunk entirely void", 3, 0.0, 0.0, 13,
     ((0.1, 0.6, 0.9, 0.3, 1.0), (0.5, 0.0, 0.2, 0.75, 1.0))),
)

ACCUMULATION_SLIPS = {
    "1/k": ("each chunk's loss counts 1/chunks of the batch's: the batch's loss is the mean over ALL its labelled "
            "pixels, so a chunk counts by its share of them (its labelled pixels / the batch's labelled pixels); a "
            "chunk that is mostly void counts little."),
    "crops": ("each chunk counts by its share of the crops (or of all pixels, void included): the mean is over the "
              "LABELLED pixels (masks != 255), and a crop that is 95 % void holds few of them."),
    "sum": ("the chunks' losses are added without a weight: the update is about chunks times too large, and the "
            "chunks are not weighed by their labelled pixels."),
    "alpha": "the auxiliary loss is missing its weight alpha: main + alpha * aux in every chunk.",
    "zero_grad per chunk": ("the gradients are cleared inside the loop, so only the last chunk's gradient reaches "
                            "optimizer.step(): backward() ADDS into .grad, which is what accumulation relies on; clear "
                            "them once per update, before the first chunk."),
    "no zero_grad": ("the first update matches but the second does not: the previous update's gradients were still in "
                     ".grad. Clear them once per update, before the first chunk."),
}

ACCUMULATION_HINT = ("the update must be the one of the whole batch's loss, main + alpha * aux, each a mean over ALL "
                     "the batch's labelled pixels: weigh each chunk's loss by its share of them, let backward() add "
                     "the chunks' gradients up in .grad (cleared once per update), then update once.")

VOID_HINT = ("a chunk without a labelled pixel has a mean loss of 0/0 = NaN (F.cross_entropy with every pixel "
             "ignored), and 0 * NaN is still NaN; such a chunk adds nothing to the batch's loss or its gradient.")


@contextlib.contextmanager
def _float64() -> Iterator[None]:
    """torch's default dtype float64 inside the block: a count divided by a count is float64, like the model."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _accumulation_batches(seed: int, voids: Sequence[Sequence[float]]) -> list[tuple[Tensor, Tensor]]:
    """One float64 batch per step: images (B, 3, H, W) and blocky trainId masks (B, H, W), crop i's top rows void
    in the share ``voids[step][i]`` (as the padding of a crop that overhangs the image)."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for shares in voids:
        images = torch.randn(len(shares), 3, *SIZE, generator=generator, dtype=torch.float64)
        coarse = torch.randint(0, NUM_CLASSES, (len(shares), 1, 6, 7), generator=generator).double()
        masks = F.interpolate(coarse, size=SIZE, mode="nearest")[:, 0].long()
        for mask, share in zip(masks, shares):
            mask[:round(share * SIZE[0])] = IGNORE_INDEX
        batches.append((images, masks))
    return batches


def _accumulation_fresh(alpha: float, weight_decay: float) -> tuple[nn.Module, Any, Any]:
    """The tiny PSPNet in float64 and EVAL mode (BatchNorm on its stored statistics, no dropout: each crop's output
    depends on that crop alone, the setting where accumulation is exact), and its optimiser and poly schedule."""
    model = _model().double().eval()
    config = TrainConfig(iters=4, lr=0.01, alpha=alpha, weight_decay=weight_decay, channels_last=False)
    optimizer, scheduler = build_optimizer(model, config)
    return model, optimizer, scheduler


@dataclasses.dataclass
class _Trace:
    """What one call of a step did, as hooks on the model and the optimiser saw it."""

    sizes: list[int] = dataclasses.field(default_factory=list)  # crops in each forward pass
    held: bool = False  # a chunk's backward came after the next forward: two chunks' graphs were alive at once
    updates: int = 0  # optimizer.step() calls


@contextlib.contextmanager
def _tracing(model: nn.Module, optimizer: torch.optim.Optimizer, call: str) -> Iterator[_Trace]:
    """Hooks on ``model`` (each forward pass, and the backward through its output) and on ``optimizer.step``.

    A forward pass in training mode stops ``call`` at once (a chunk of one crop could not even run).
    """
    trace = _Trace()

    def before(module: nn.Module, args: tuple[Any, ...]) -> None:
        if module.training:
            raise AssertionError(f"{call} ran the model in training mode.\n  hint: leave the model's mode as you got "
                                 "it: the check passes it in eval mode, because in training mode BatchNorm normalises "
                                 "each chunk by its own statistics and no accumulation can equal the whole batch (see "
                                 "the lesson).")
        trace.sizes.append(int(args[0].shape[0]) if args and isinstance(args[0], Tensor) else 0)

    def after(module: nn.Module, args: tuple[Any, ...], outputs: Any) -> None:
        begun = len(trace.sizes)  # forward passes begun so far, this one included
        out = outputs.get("out") if isinstance(outputs, dict) else None
        if isinstance(out, Tensor) and out.requires_grad:
            out.register_hook(lambda grad: setattr(trace, "held", trace.held or len(trace.sizes) > begun))

    def stepped(*_: Any) -> None:
        trace.updates += 1

    handles = [model.register_forward_pre_hook(before), model.register_forward_hook(after),
               optimizer.register_step_post_hook(stepped)]
    try:
        yield trace
    finally:
        for handle in handles:
            handle.remove()


def _accumulation_run(step: Callable[[nn.Module, Tensor, Tensor, Any, Any], Any], model: nn.Module, optimizer: Any,
                      scheduler: Any, batches: Sequence[tuple[Tensor, Tensor]],
                      call: str = "the check's own step") -> list[tuple[Any, list[float], dict[str, Tensor], _Trace]]:
    """(returned loss, rates of both groups, state, trace) after each batch."""
    after = []
    for images, masks in batches:
        with _tracing(model, optimizer, call) as trace:
            loss = step(model, images.clone(), masks.clone(), optimizer, scheduler)
        after.append((loss, [g["lr"] for g in optimizer.param_groups], _snapshot(model), trace))
    return after


def _accumulated(model: nn.Module, images: Tensor, masks: Tensor, optimizer: Any, scheduler: Any, alpha: float,
                 chunks: int, slip: str | None = None) -> tuple[float, float]:
    """Gradient accumulation by hand, right or with one ``slip`` (a key of :data:`ACCUMULATION_SLIPS`).

    Returns the batch's loss and the plain mean of the chunks' losses (to name a wrong return value).
    """
    labelled = int((masks != IGNORE_INDEX).sum())
    if slip != "no zero_grad":
        optimizer.zero_grad(set_to_none=True)
    total, losses = 0.0, []
    for x, y in zip(images.tensor_split(chunks), masks.tensor_split(chunks)):
        count = int((y != IGNORE_INDEX).sum())
        if count == 0:
            continue
        outputs = model(x)
        loss = (F.cross_entropy(outputs["out"], y, ignore_index=IGNORE_INDEX)
                + (1.0 if slip == "alpha" else alpha) * F.cross_entropy(outputs["aux"], y, ignore_index=IGNORE_INDEX))
        if slip == "zero_grad per chunk":
            optimizer.zero_grad(set_to_none=True)
        weight = {"1/k": 1 / chunks, "crops": len(x) / len(images), "sum": 1.0}.get(slip or "", count / labelled)
        (weight * loss).backward()
        total += count / labelled * loss.item()
        losses.append(loss.item())
    optimizer.step()
    scheduler.step()
    return total, sum(losses) / len(losses)


def _accumulation_weights_problem(expected: dict[str, Tensor], got: dict[str, Tensor], rtol: float = ACCUMULATION_RTOL,
                                  atol: float = ACCUMULATION_ATOL) -> str | None:
    for key, want in expected.items():
        detail = differences(want, got[key], rtol=rtol, atol=atol)
        if detail is not None:
            return f"{key} ({_part(key)}): {detail}"
    return None


def _accumulation_slip(case: tuple[Any, ...], batches: Sequence[tuple[Tensor, Tensor]], got: list[Any]) -> str | None:
    """The slip whose run, up to the step that failed, gives the learner's weights (None if none does)."""
    _, chunks, alpha, weight_decay, _, _ = case
    candidates = ["no zero_grad"] if len(batches) > 1 else [s for s in ACCUMULATION_SLIPS if s != "no zero_grad"]
    for slip in candidates:
        if slip == "alpha" and alpha == 1.0:
            continue
        model, optimizer, scheduler = _accumulation_fresh(alpha, weight_decay)
        with contextlib.suppress(Exception):
            slipped = _accumulation_run(lambda m, x, y, o, s: _accumulated(m, x, y, o, s, alpha, chunks, slip), model,
                                        optimizer, scheduler, batches)
            if all(_accumulation_weights_problem(w, g[2]) is None for (_, _, w, _), g in zip(slipped, got)):
                return slip
    return None


def _accumulation_problem(case: tuple[Any, ...], batches: Sequence[tuple[Tensor, Tensor]], start: dict[str, Tensor],
                          expected: list[Any], got: list[Any]) -> str | None:
    """What is wrong first, step by step: how the chunks were run, the update, the rates, the weights, the loss."""
    _, chunks, alpha, weight_decay, _, _ = case
    crops = len(batches[0][0])
    limit = math.ceil(crops / chunks)
    for step, ((want_loss, want_rates, want_weights, _), (got_loss, got_rates, got_weights, trace)) in enumerate(
            zip(expected, got), start=1):
        where = f"(step {step} of {len(expected)})"
        if not trace.sizes:
            return f"never called the model {where}.\n  hint: run each chunk through model(chunk)."
        if max(trace.sizes) > limit:
            return (f"ran the model on {max(trace.sizes)} crops at once {where}: with chunks={chunks}, a forward pass "
                    f"may hold at most {limit} of the {crops} crops (one chunk).\n  hint: chunks is the NUMBER of "
                    "pieces, as in images.tensor_split(chunks), not their size; run each piece on its own.")
        if trace.held:
            return (f"kept several chunks' graphs alive at once {where}: a chunk's backward() came after the next "
                    "chunk's forward pass, so the activations of the whole batch were in memory together, which is "
                    "what accumulation exists to avoid.\n  hint: call backward() on each chunk's loss before the next "
                    "chunk's forward pass.")
        if any(bool(torch.isnan(value).any()) for value in got_weights.values()):
            return f"turned weights into NaN {where}.\n  hint: {VOID_HINT}"
        if trace.updates != 1:
            return (f"called optimizer.step() {trace.updates} times in one call {where}.\n  hint: one update per "
                    "batch, after the last chunk's backward().")
        if differences(want_rates, got_rates, rtol=1e-9, atol=1e-15) is not None:
            return (f"left the learning rates at {[f'{v:.6g}' for v in got_rates]} {where}, expected "
                    f"{[f'{v:.6g}' for v in want_rates]}.\n  hint: the poly schedule counts updates, not chunks: "
                    "one scheduler.step() per call, after optimizer.step().")
        problem = _accumulation_weights_problem(want_weights, got_weights)
        if problem is not None:
            if _accumulation_weights_problem(start, got_weights) is None:
                return (f"did not change the weights {where}.\n  hint: backward() on each chunk's loss, then "
                        "optimizer.step().")
            if _accumulation_weights_problem(want_weights, got_weights, rtol=1e-5, atol=1e-8) is None:
                why = ("they agree only to float32 precision: the check runs in float64 (model, crops and torch's "
                       "default dtype); keep every number you compute in float64 (no .float(), no torch.float32).")
            else:
                slip = _accumulation_slip(case, batches[:step], got[:step])
                why = ACCUMULATION_SLIPS[slip] if slip else ACCUMULATION_HINT
            return f"gave other weights than train_step on the whole batch {where}: {problem}.\n  hint: {why}"
        value = _as_float(got_loss)
        if value is None:
            return (f"returned {short_repr(got_loss)} {where}.\n  hint: return the loss of the whole batch as a number "
                    "(the value train_step returns on it).")
        if math.isnan(value):
            return f"returned the loss nan {where}, expected {want_loss:.9g}.\n  hint: {VOID_HINT}"
        if not math.isclose(value, want_loss, rel_tol=1e-9, abs_tol=1e-12):
            model, optimizer, scheduler = _accumulation_fresh(alpha, weight_decay)
            plain = _accumulation_run(lambda m, x, y, o, s: _accumulated(m, x, y, o, s, alpha, chunks)[1], model,
                                      optimizer, scheduler, batches[:step])[-1][0]
            why = (" That is the plain mean of the chunks' losses: the batch's loss weighs them as the update does."
                   if math.isclose(value, plain, rel_tol=1e-9) else "")
            return (f"returned the loss {value:.9g} {where}, expected {want_loss:.9g}, train_step's on the whole "
                    f"batch.{why}\n  hint: return the mean over all the batch's labelled pixels of main + alpha * aux, "
                    "computed before the update.")
    return None


def check_accumulated_step(my_accumulated_step: Callable[..., Any]) -> None:
    """Check ``my_accumulated_step(model, images, masks, optimizer, scheduler, alpha, chunks)`` (gradient accumulation).

    Three cases, two updates each, against :func:`pspnet_edu.training.train_step` on the whole batch, in float64
    with the model in eval mode: the weights, both groups' rates and the returned loss; the hooks also see that each
    forward pass holds one chunk, that each chunk's graph is freed before the next forward, and one update per call.

    >>> def my_accumulated_step(model, images, masks, optimizer, scheduler, alpha, chunks):
    ...     return _accumulated(model, images, masks, optimizer, scheduler, alpha, chunks)[0]
    >>> check_accumulated_step(my_accumulated_step)
    ✓ my_accumulated_step matches pspnet_edu.training.train_step on the whole batch on 3 cases
    """
    require_callable(my_accumulated_step)
    name = learner_name(my_accumulated_step)
    refuse_reference(my_accumulated_step, ACCUMULATION_HIDDEN, name)
    with torch.random.fork_rng(devices=[]), _float64():
        for case in _ACCUMULATION_CASES:  # each case's reference first (outside the hiding: it needs what is hidden)
            about, chunks, alpha, weight_decay, seed, voids = case
            batches = _accumulation_batches(seed, voids)
            model, optimizer, scheduler = _accumulation_fresh(alpha, weight_decay)
            start = _snapshot(model)
            expected = _accumulation_run(lambda m, x, y, o, s: float(train_step(m, x, y, o, s, alpha)["loss"]), model,
                                         optimizer, scheduler, batches)
            model, optimizer, scheduler = _accumulation_fresh(alpha, weight_decay)
            call = f"{name}(model, images, masks, optimizer, scheduler, alpha={alpha}, chunks={chunks})  [{about}]"
            with hidden(*ACCUMULATION_HIDDEN) as hiding, learner_code(name, call, hiding):
                got = _accumulation_run(lambda m, x, y, o, s: my_accumulated_step(m, x, y, o, s, alpha, chunks), model,
                                        optimizer, scheduler, batches, call)
            problem = _accumulation_problem(case, batches, start, expected, got)
            if problem is not None:
                raise AssertionError(f"{call} {problem}")
    passed(name, "pspnet_edu.training.train_step on the whole batch", len(_ACCUMULATION_CASES))


# ------------------------------------------------------------------ overfit one batch

OVERFIT_STEPS = 100  # about 2 s on one CPU core for the tiny model at 48x56
OVERFIT_LOSS = 0.15  # the recipe reaches about 0.06 in 100 steps; each planted bug alone stays above 0.3
OVERFIT_LR = 0.1  # a fast rate: nothing to generalise to, only one batch to memorise

OVERFIT_SLIPS = {
    "aux without gradient": ("the auxiliary loss has no gradient (computed under torch.no_grad() or on detached "
                             "logits): aux_head never learns and layer3 misses the deep supervision, so "
                             "main + alpha * aux cannot reach 0. Both cross-entropies must be part of the graph."),
    "one group": ("the PPM and the heads learn at the backbone's rate: they need config.lr * config.head_lr_mult, "
                  "a second parameter group (parameters whose name does not start with 'backbone.')."),
    "no zero_grad": ("the gradients add up over the steps (the first step matches, the next do not): call "
                     "optimizer.zero_grad() before loss.backward()."),
    "scheduler first": ("the scheduler steps before the optimizer, so the first update already uses a decayed rate: "
                        "scheduler.step() after optimizer.step()."),
}


def _overfit_model() -> PSPNet:
    """The tiny PSPNet without dropout: a sanity check switches regularisation off (and draws no random numbers)."""
    return _model(dropout=0.0).train()


def _overfit_config(iters: int, lr: float) -> TrainConfig:
    return TrainConfig(iters=iters, lr=lr, channels_last=False)


def _recipe_run(model: nn.Module, images: Tensor, masks: Tensor, config: TrainConfig) -> list[float]:
    """The package's recipe on one batch: build_optimizer, then train_step ``config.iters`` times."""
    optimizer, scheduler = build_optimizer(model, config)
    return [float(train_step(model, images, masks, optimizer, scheduler, config.alpha)["loss"])
            for _ in range(config.iters)]


def _slipped_run(model: nn.Module, images: Tensor, masks: Tensor, config: TrainConfig,
                 slips: frozenset[str]) -> list[float]:
    """The recipe by hand with the given ``slips`` (keys of :data:`OVERFIT_SLIPS`), to name the learner's."""
    if "one group" in slips:
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
    else:
        backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
        new = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
        optimizer = torch.optim.SGD([{"params": backbone, "lr": config.lr},
                                     {"params": new, "lr": config.lr * config.head_lr_mult}],
                                    lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=config.iters, power=config.power)
    losses = []
    for _ in range(config.iters):
        outputs = model(images)
        main = F.cross_entropy(outputs["out"], masks, ignore_index=IGNORE_INDEX)
        aux_logits = outputs["aux"].detach() if "aux without gradient" in slips else outputs["aux"]
        loss = main + config.alpha * F.cross_entropy(aux_logits, masks, ignore_index=IGNORE_INDEX)
        if "no zero_grad" not in slips:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if "scheduler first" in slips:
            scheduler.step()
        optimizer.step()
        if "scheduler first" not in slips:
            scheduler.step()
        losses.append(loss.item())
    return losses


def _slips_of(start: dict[str, Tensor], images: Tensor, masks: Tensor, config: TrainConfig,
              got: dict[str, Tensor]) -> list[str] | None:
    """The smallest set of known slips whose run ends at the learner's weights, or None if none does."""
    import itertools

    for size in range(1, len(OVERFIT_SLIPS) + 1):
        for slips in itertools.combinations(OVERFIT_SLIPS, size):
            model = _overfit_model()
            model.load_state_dict(start)
            with contextlib.suppress(Exception), _quiet():
                _slipped_run(model, images, masks, config, frozenset(slips))
                if _weights_problem(_snapshot(model), got) is None:
                    return list(slips)
    return None


def _overfit_call(my_overfit_one_batch: Callable[..., Any], name: str, call: str, hiding: Any,
                  model: nn.Module, images: Tensor, masks: Tensor, config: TrainConfig) -> list[float]:
    with learner_code(name, call, hiding):
        losses = my_overfit_one_batch(model, images.clone(), masks.clone(), config)
    values = [_as_float(v) for v in losses] if isinstance(losses, (list, tuple)) else None
    if values is None or len(values) != config.iters or any(v is None for v in values):
        raise AssertionError(f"{call} returned {short_repr(losses)}.\n  hint: return a list of the "
                             f"{config.iters} losses, one number per step (loss.item()), in order.")
    return values  # type: ignore[return-value]


def check_overfit_one_batch(my_overfit_one_batch: Callable[..., Any]) -> None:
    """Check ``my_overfit_one_batch(model, images, masks, config)``: the recipe's first steps, then the sanity check.

    >>> def my_overfit_one_batch(model, images, masks, config):
    ...     return _slipped_run(model, images, masks, config, frozenset())
    >>> check_overfit_one_batch(my_overfit_one_batch)
    ✓ my_overfit_one_batch matches pspnet_edu.training.train_step on 3 steps, and overfits one batch in 100 steps
    """
    require_callable(my_overfit_one_batch)
    name = learner_name(my_overfit_one_batch)
    refuse_reference(my_overfit_one_batch, OVERFIT_HIDDEN, name)
    images, masks = _batches(3, 1)[0]
    short = _overfit_config(3, 0.01)  # a small rate: 3 steps stay close to the start, floats agree to 1e-4
    model = _overfit_model()
    start = _snapshot(model)
    expected_losses = _recipe_run(model, images, masks, short)  # before hiding: the recipe needs what is hidden
    expected = _snapshot(model)
    call = f"{name}(model, images, masks, config)  [3 steps at lr {short.lr} from the package's starting weights]"
    model = _overfit_model()
    with hidden(*OVERFIT_HIDDEN) as hiding:
        losses = _overfit_call(my_overfit_one_batch, name, call, hiding, model, images, masks, short)
    got = _snapshot(model)
    problem = _weights_problem(expected, got)
    if problem is not None:
        slips = _slips_of(start, images, masks, short, got)
        if slips:
            found = "\n".join(f"  - {OVERFIT_SLIPS[s]}" for s in slips)
            raise AssertionError(f"{call} gave other weights than build_optimizer + train_step: {problem}.\n"
                                 f"  still wrong ({len(slips)}):\n{found}")
        if _weights_problem(start, got) is None:
            raise AssertionError(f"{call} did not change the weights.\n  hint: call loss.backward() and "
                                 f"optimizer.step() at every step. {STEP_HINT}")
        raise AssertionError(f"{call} gave other weights than build_optimizer + train_step: {problem}.\n"
                             f"  hint: {OPTIMIZER_HINT} {STEP_HINT}")
    for step, (want, have) in enumerate(zip(expected_losses, losses), start=1):
        if not math.isclose(have, want, rel_tol=1e-5, abs_tol=1e-7):
            raise AssertionError(f"{call} returned the loss {have:.6g} at step {step}, expected {want:.6g}.\n"
                                 "  hint: return main + alpha * aux of each step, computed before its update.")
    config = _overfit_config(OVERFIT_STEPS, OVERFIT_LR)
    call = f"{name}(model, images, masks, config)  [{OVERFIT_STEPS} steps at lr {OVERFIT_LR} on one batch]"
    with hidden(*OVERFIT_HIDDEN) as hiding:
        losses = _overfit_call(my_overfit_one_batch, name, call, hiding, _overfit_model(), images, masks, config)
    if not (math.isfinite(losses[-1]) and losses[-1] < OVERFIT_LOSS):
        raise AssertionError(f"{call} ended at the loss {losses[-1]:.3g}, expected below {OVERFIT_LOSS}: one batch "
                             "was not memorised.\n  hint: the first steps matched the recipe, so look at what "
                             "changes later in the run. " + STEP_HINT)
    print(f"✓ {name} matches pspnet_edu.training.train_step on 3 steps, and overfits one batch in {OVERFIT_STEPS} "
          f"steps")
