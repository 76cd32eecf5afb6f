"""Tests for the exact tests of pspnet_edu.experiments.stats (fisher_exact, sign_flip_p, fisher_power)."""

import itertools
import math

import numpy as np
import pytest

from pspnet_edu.experiments.stats import fisher_exact, fisher_power, sign_flip_p


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


def brute_force_sign_flip(a, b, alternative="greater"):
    """Every sign pattern as a row of a numpy matrix: an independent way to the same p-value."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
    means, observed = (signs * d).mean(axis=1), d.mean()
    extreme = {"greater": means >= observed - 1e-9, "less": means <= observed + 1e-9,
               "two-sided": np.abs(means) >= abs(observed) - 1e-9}[alternative]
    return float(extreme.mean())


def test_sign_flip_p_equals_brute_force_and_known_values():
    rng = np.random.default_rng(0)
    cases = [([0.71, 0.52, 0.4], [0.61, 0.32, 0.7]), ([0.5, 0.6, 0.4, 0.7], [0.3, 0.6, 0.3, 0.7]), ([0.7], [0.4])]
    cases += [(rng.normal(0.1, 0.3, n).round(2).tolist(), rng.normal(0, 0.3, n).round(2).tolist())
              for n in range(1, 11)]
    for a, b in cases:
        for alternative in ("greater", "less", "two-sided"):
            assert sign_flip_p(a, b, alternative) == brute_force_sign_flip(a, b, alternative), (a, b, alternative)
    for n in range(1, 11):  # every difference positive: only the observed assignment is that large
        assert sign_flip_p([1.0] * n, [0.5] * n) == 1 / 2 ** n
        assert sign_flip_p([0.5] * n, [1.0] * n) == 1.0
    assert sign_flip_p([0.6] * 5, [0.5] * 5) == 1 / 32 > 0.01  # five seeds can never reach 1 %
    a, b = [0.2, 0.5, 0.1], [0.2, 0.3, 0.2]
    assert sign_flip_p(a, b, "two-sided") == 2 * sign_flip_p(a, b)  # no zero mean: the mirror doubles the count
    with_zeros = sign_flip_p([0.7, 0.5, 0.4, 0.6, 0.3], [0.4, 0.5, 0.5, 0.6, 0.3])
    assert with_zeros == sign_flip_p([0.7, 0.4], [0.4, 0.5]) == 0.5  # zero differences change no p
    assert sign_flip_p([0.5, 0.6], [0.5, 0.6]) == 1.0


def test_sign_flip_p_counts_float_ties():
    # differences 0.1, 0.2, -0.3: the mean with every sign flipped is the observed 0 up to rounding
    a, b = [0.71, 0.52, 0.4], [0.61, 0.32, 0.7]
    d = [x - y for x, y in zip(a, b)]
    assert -sum(d) / 3 < sum(d) / 3  # without a tolerance the tie would be lost
    assert sign_flip_p(a, b) == 5 / 8


def test_sign_flip_p_rejects_what_it_cannot_compute():
    with pytest.raises(ValueError, match="1 to 20 seeds"):
        sign_flip_p([], [])
    with pytest.raises(ValueError, match="1 to 20 seeds"):
        sign_flip_p([0.5] * 21, [0.4] * 21)
    with pytest.raises(ValueError, match="same seeds"):
        sign_flip_p([0.5, 0.6], [0.5])
    with pytest.raises(ValueError, match="alternative must be one of"):
        sign_flip_p([0.5], [0.4], alternative="two_sided")


def simulated_power(a_rate, b_rate, runs, alpha=0.05, draws=20000):
    """The share of simulated sweeps (independent seeds) in which Fisher's one-sided test rejects."""
    rng = np.random.default_rng(0)
    hits = rng.binomial(runs, [a_rate, b_rate], size=(draws, 2))
    p = {(a, b): fisher_exact(a, runs, b, runs) for a in range(runs + 1) for b in range(runs + 1)}
    return float(np.mean([p[int(a), int(b)] <= alpha * (1 + 1e-9) for a, b in hits]))


@pytest.mark.parametrize(("a_rate", "b_rate", "runs"), [(0.9, 0.1, 10), (0.6, 0.0, 5), (0.9, 0.2, 7), (0.7, 0.4, 12)])
def test_fisher_power_equals_the_share_of_simulated_sweeps_that_reject(a_rate, b_rate, runs):
    assert fisher_power(a_rate, b_rate, runs) == pytest.approx(simulated_power(a_rate, b_rate, runs), abs=0.012)


def test_fisher_power_edges_size_and_sawtooth():
    assert fisher_power(1.0, 0.0, 3) == 1.0  # 3/3 vs 0/3 has p = 1/20 = alpha exactly: it rejects
    assert fisher_power(1.0, 0.0, 2) == 0.0  # 2/2 vs 0/2: p = 1/6, never significant
    assert fisher_power(0.9, 0.1, 4, alpha=0.01) == 0.0  # the smallest p of four seeds is 1/70
    for runs in (3, 5, 8, 10):
        assert fisher_power(0.5, 0.5, runs) <= 0.05  # equal rates: the false-alarm rate is at most alpha
    assert fisher_power(0.9, 0.1, 4) < fisher_power(0.9, 0.1, 3)  # a discrete test: more seeds can lose power
    assert fisher_power(0.9, 0.1, 10) > fisher_power(0.9, 0.2, 10) > fisher_power(0.9, 0.4, 10)
    with pytest.raises(ValueError, match="rates are probabilities"):
        fisher_power(1.2, 0.1, 5)
    with pytest.raises(ValueError, match="at least 1 seed"):
        fisher_power(0.9, 0.1, 0)
