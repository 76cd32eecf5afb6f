"""Tests for pspnet_edu.schedule: the poly formula (the trainer's PolynomialLR is tested against it in
test_training_optim.py)."""

from __future__ import annotations

import pytest

from pspnet_edu.schedule import poly_lr


def test_reference_values() -> None:
    # Hand-computed: 0.01 * (1 - 25/100) ** 0.9 = 0.01 * 0.75 ** 0.9
    assert poly_lr(0.01, 25, 100) == pytest.approx(0.01 * 0.75**0.9, rel=1e-12)
    assert poly_lr(0.01, 25, 100) == pytest.approx(0.0077189, abs=1e-7)
    assert poly_lr(0.01, 0, 90_000) == 0.01
    assert poly_lr(0.01, 90_000, 90_000) == 0.0
    assert poly_lr(0.01, 100_000, 90_000) == 0.0  # past the end stays at 0


def test_monotone_decreasing() -> None:
    values = [poly_lr(1.0, i, 50) for i in range(51)]
    assert all(a > b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("bad", [(0.01, -1, 10), (0.01, 0, 0), (0.01, 0, -5)])
def test_bad_arguments(bad: tuple[float, int, int]) -> None:
    with pytest.raises(ValueError):
        poly_lr(*bad)
