"""Self-check of the poly learning-rate formula (Zhao et al. 2017, Sec. 5.1 "Implementation Details").

- :func:`check_poly_lr`: ``my_poly_lr(base_lr, iteration, max_iterations, power=0.9)``, the
  poly learning-rate policy, against :func:`pspnet_edu.schedule.poly_lr`.

notebooks/07_training.ipynb shows the formula and plots it; its exercise on the schedule is
the optimiser (:func:`pspnet_edu.checks.training.check_optimizer`: two parameter groups and
``PolynomialLR``), since writing the formula shown just above is no exercise. This check stays
as the smallest complete example of a check (``tests/test_checks.py`` tests the machinery on it)
and for a learner who wants to try the formula anyway.

While ``my_poly_lr`` runs, ``poly_lr`` is hidden (:func:`pspnet_edu.checks._core.hidden`).
``torch.optim.lr_scheduler.PolynomialLR`` is not: the lesson shows that it agrees, and reading a
rate from it needs an optimizer stepped ``iteration`` times, which is no shortcut.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pspnet_edu.checks._core import Case, check_cases
from pspnet_edu.schedule import poly_lr

POLY_LR_HIDDEN = (poly_lr,)  # what check_poly_lr hides while the learner's code runs

POLY_FORMULA = "lr = base_lr * (1 - iteration / max_iterations) ** power, and 0 once iteration >= max_iterations"

_POLY_CASES = (
    Case((0.01, 0, 100), hint="iteration 0: the base rate."),
    Case((0.01, 50, 100), hint="half-way: 0.5 ** 0.9 of the base rate, a bit more than half."),
    Case((0.01, 99, 100), hint="the last step."),
    Case((0.01, 100, 100), hint="the end of the schedule: 0."),
    Case((0.1, 10, 100), {"power": 1.0}, hint="power 1 is a straight line."),
    Case((0.1, 30, 40), {"power": 2.0}),
    Case((0.01, 45000, 90000), hint="the paper's Cityscapes schedule, 90K iterations (paper Sec. 5.1)."),
    Case((0.1, 150, 100), hint="past the end of the schedule the rate stays 0."),
)


def _poly_diagnose(case: Case, expected: Any, got: Any) -> str:
    base, iteration, total = case.args
    power = case.kwargs.get("power", 0.9)
    if isinstance(got, complex):
        return ("a negative number to a fractional power is complex in Python: past max_iterations "
                "clamp the progress to 1 (the rate stays 0). " + POLY_FORMULA)
    progress = min(iteration, total) / total
    slips = {
        "you forgot the power (that is the linear policy)": base * (1 - progress),
        "raise (1 - progress) to the power, not progress alone": base * (1 - progress ** power),
        "the rate must start at base_lr and fall: use 1 - iteration / max_iterations": base * progress ** power,
        "the exponent is power, e.g. 0.9; do not invert it": base * (1 - progress) ** (1 / power),
    }
    for hint, answer in slips.items():
        if isinstance(got, (int, float)) and abs(got - answer) <= 1e-12 + 1e-9 * abs(answer) and abs(answer - expected) > 1e-12:
            return hint + ". " + POLY_FORMULA
    return POLY_FORMULA


def check_poly_lr(my_poly_lr: Callable[..., float]) -> None:
    """Check ``my_poly_lr(base_lr, iteration, max_iterations, power=0.9)`` on 8 cases.

    >>> def my_poly_lr(base_lr, iteration, max_iterations, power=0.9):
    ...     return base_lr * (1 - min(iteration, max_iterations) / max_iterations) ** power
    >>> check_poly_lr(my_poly_lr)
    ✓ my_poly_lr matches pspnet_edu.schedule.poly_lr on 8 cases
    """
    check_cases(my_poly_lr, poly_lr, _POLY_CASES, hide=POLY_LR_HIDDEN, hint=_poly_diagnose, rtol=1e-9, atol=1e-12)
