"""Tests for pspnet_edu/checks/schedule.py (the self-check of notebook 07)."""

from __future__ import annotations

import pytest
import torch

from pspnet_edu.checks.schedule import _POLY_CASES, check_poly_lr


def right(base_lr, iteration, max_iterations, power=0.9):
    return base_lr * (1 - min(iteration, max_iterations) / max_iterations) ** power


def test_cases_agree_with_polynomial_lr():
    # The reference values the check uses, against torch's own scheduler stepped `iteration` times.
    for case in _POLY_CASES:
        base, iteration, total = case.args
        if total > 1000:
            continue  # 90K steps: covered by the closed form
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
        scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total, power=case.kwargs.get("power", 0.9))
        for _ in range(iteration):
            optimizer.step()
            scheduler.step()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(right(base, iteration, total, **case.kwargs), abs=1e-12)


def test_right_answer_passes(capsys):
    def my_poly_lr(base_lr, iteration, max_iterations, power=0.9):
        return right(base_lr, iteration, max_iterations, power)

    check_poly_lr(my_poly_lr)
    assert capsys.readouterr().out == "✓ my_poly_lr matches pspnet_edu.schedule.poly_lr on 8 cases\n"


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda b, i, m, power=0.9: b * (1 - i / m), "forgot the power"),
        (lambda b, i, m, power=0.9: b * (1 - (i / m) ** power), "not progress alone"),
        (lambda b, i, m, power=0.9: b * (i / m) ** power, "start at base_lr"),
        (lambda b, i, m, power=0.9: b * (1 - i / m) ** power, "complex"),  # no clamp past the end
    ],
)
def test_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_poly_lr(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value)
