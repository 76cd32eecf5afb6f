"""Tests for pspnet_edu.experiments.stats.fisher_exact against an enumeration of every relabelling."""

import itertools
import math

import pytest

from pspnet_edu.experiments.stats import fisher_exact


def enumerated_p(a_hits: int, a_runs: int, b_hits: int, b_runs: int) -> float:
    """Share of the ways to pick which runs belong to ``a`` that give ``a`` at least ``a_hits`` successes."""
    outcomes = [1] * (a_hits + b_hits) + [0] * (a_runs + b_runs - a_hits - b_hits)
    picks = list(itertools.combinations(range(len(outcomes)), a_runs))
    return sum(sum(outcomes[i] for i in pick) >= a_hits for pick in picks) / len(picks)


@pytest.mark.parametrize("counts", [(3, 5, 0, 5), (9, 10, 1, 10), (2, 4, 2, 4), (0, 3, 3, 3), (5, 5, 5, 5), (4, 6, 1, 7)])
def test_fisher_exact_equals_the_share_of_relabellings_at_least_as_lopsided(counts) -> None:
    assert fisher_exact(*counts) == pytest.approx(enumerated_p(*counts), abs=1e-12)


def test_fisher_exact_reference_values_and_bad_counts() -> None:
    assert fisher_exact(3, 5, 0, 5) == pytest.approx(10 / 120)  # the 3/5 vs 0/5: one-sided 0.083
    assert fisher_exact(10, 10, 0, 10) == pytest.approx(1 / math.comb(20, 10))
    assert fisher_exact(0, 5, 5, 5) == 1.0  # 0 hits for a: every split has at least that many
    with pytest.raises(ValueError, match="between 0 and the runs"):
        fisher_exact(6, 5, 0, 5)
