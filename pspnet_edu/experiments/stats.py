"""Summarising runs over seeds, honestly: mean, sample spread, the paired t statistic, context IoU.

An ablation compares settings that were each trained with a few seeds; a single run's
difference can be noise. Two small pieces of statistics decide what such a comparison may
claim (lesson 09's exercises re-derive both; ``pspnet_edu.checks.ablate`` compares them):

- :func:`mean_and_spread`: the mean over seeds and the *sample* standard deviation (n - 1);
- :func:`paired_t`: the paired t statistic of two settings run with the same seeds, to be
  compared with the two-sided 5 % critical value ``T_CRITICAL_95[n - 1]``;
- :func:`fisher_exact` and :func:`sign_flip_p`: exact tests that assume no normal distribution,
  for all-or-nothing outcomes (a seed learns a context pair or it does not): Fisher's counts the
  seeds that succeed, the sign-flip test uses the per-seed differences themselves;
- :func:`fisher_power`: how often Fisher's test would find a difference in learning rates with a
  given number of seeds, to plan a seed budget.

Taught in notebooks/09_ablations.ipynb.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Two-sided 95 % critical values of Student's t for df = 1..10 (any t table, e.g. Fisher &
# Yates). With n seeds a paired comparison has df = n - 1: two seeds need |t| > 12.71.
T_CRITICAL_95: dict[int, float] = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365,
                                   8: 2.306, 9: 2.262, 10: 2.228}


def mean_and_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1 in the denominator) of per-seed scores.

    >>> mean_and_spread([0.60, 0.64])
    (0.62, 0.028284271247461926)
    """
    values = [float(v) for v in values]
    if len(values) < 2:
        raise ValueError(f"a spread needs at least two seeds, got {len(values)} value(s)")
    return statistics.mean(values), statistics.stdev(values)


def paired_t(a: Sequence[float], b: Sequence[float]) -> float:
    """Paired t statistic of ``a - b`` (runs matched by seed): mean(d) / (stdev(d) / sqrt(n)).

    Positive when ``a`` scores higher. Compare ``abs(t)`` with ``T_CRITICAL_95[n - 1]``.

    >>> round(paired_t([0.60, 0.66], [0.40, 0.50]), 4)
    9.0
    """
    if len(a) != len(b):
        raise ValueError(f"paired runs need the same seeds on both sides, got {len(a)} and {len(b)} values")
    differences = [float(x) - float(y) for x, y in zip(a, b)]
    mean, spread = mean_and_spread(differences)
    if spread == 0:
        raise ValueError("every seed gave the same difference: the t statistic is undefined (infinite)")
    return mean / (spread / math.sqrt(len(differences)))


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean of per-seed values and its two-sided 95 % confidence interval (Student's t, n - 1 df).

    >>> [round(v, 4) for v in mean_interval([0.20, 0.16, 0.17])]
    [0.1767, 0.125, 0.2284]
    """
    mean, spread = mean_and_spread(values)
    half = T_CRITICAL_95[len(values) - 1] * spread / math.sqrt(len(values))
    return mean, mean - half, mean + half


def paired_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Mean difference ``a - b`` over paired seeds and its two-sided 95 % confidence interval.

    >>> [round(v, 4) for v in paired_interval([0.60, 0.66, 0.62], [0.40, 0.50, 0.45])]
    [0.1767, 0.125, 0.2284]
    """
    return mean_interval([float(x) - float(y) for x, y in zip(a, b, strict=True)])


def seeds_needed(effect: float, spread: float, t_critical: float = 1.96) -> int:
    """Seeds a paired comparison needs to see ``effect`` at 5 % when differences spread by ``spread``.

    Solves ``effect / (spread / sqrt(n)) >= t_critical`` for n (the normal approximation:
    with few seeds the t critical value is larger still, so this is a lower bound).

    >>> seeds_needed(0.014, 0.02)
    8
    """
    if effect <= 0:
        raise ValueError(f"effect must be positive, got {effect}")
    return max(2, math.ceil((t_critical * spread / effect) ** 2))


def fisher_exact(a_hits: int, a_runs: int, b_hits: int, b_runs: int) -> float:
    """One-sided Fisher's exact p-value that setting ``a`` succeeds more often than ``b``.

    For all-or-nothing outcomes (a seed learns a pair or it does not) a mean IoU and its t are
    a poor summary; the count of successes is the measurement. Given the total number of
    successes, every way to split them between the two settings is equally likely if the
    setting does not matter (the hypergeometric distribution); the p-value is the probability of
    a split at least as lopsided towards ``a`` as the one seen (Fisher 1935).

    >>> round(fisher_exact(3, 5, 0, 5), 4)  # 3 of 5 against 0 of 5: C(5,3) / C(10,3) = 10/120
    0.0833
    >>> fisher_exact(10, 10, 0, 10) < 1e-5
    True
    """
    if not (0 <= a_hits <= a_runs and 0 <= b_hits <= b_runs and a_runs > 0 and b_runs > 0):
        raise ValueError(f"hits must be between 0 and the runs, got {a_hits}/{a_runs} and {b_hits}/{b_runs}")
    hits, total = a_hits + b_hits, a_runs + b_runs
    splits = math.comb(total, hits)
    return sum(math.comb(a_runs, k) * math.comb(b_runs, hits - k)
               for k in range(a_hits, min(a_runs, hits) + 1)) / splits


def fisher_power(a_rate: float, b_rate: float, runs: int, alpha: float = 0.05) -> float:
    """Power of :func:`fisher_exact` at level ``alpha`` with ``runs`` seeds per setting.

    The probability that the one-sided test says "a learns more often than b" (p <= alpha)
    when each seed of setting a learns with probability ``a_rate`` and each of b with
    ``b_rate``, independently: the sum, over every outcome (a_hits, b_hits) in
    {0..runs}^2, of its binomial probability, for the outcomes the test rejects. It is what a
    seed budget is planned with before the sweep runs. Exact, no simulation. A p within a
    relative 1e-9 of alpha counts as "<= alpha" (float rounding must not decide).

    >>> fisher_power(1.0, 0.0, 3)  # 3/3 against 0/3 always; its p is 1/20, exactly 0.05
    1.0
    >>> round(fisher_power(0.9, 0.1, 10), 4)  # the course's aim: seeds learn 90 % against 10 % of the time
    0.9888
    >>> round(fisher_power(0.9, 0.1, 4), 4), round(fisher_power(0.9, 0.1, 3), 4)  # not monotone in runs
    (0.4305, 0.5314)
    """
    if not (0.0 <= a_rate <= 1.0 and 0.0 <= b_rate <= 1.0):
        raise ValueError(f"rates are probabilities in [0, 1], got {a_rate} and {b_rate}")
    if runs < 1:
        raise ValueError(f"runs must be at least 1 seed per setting, got {runs}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")

    def binomial(k: int, rate: float) -> float:
        return math.comb(runs, k) * rate ** k * (1.0 - rate) ** (runs - k)

    return float(sum(binomial(a, a_rate) * binomial(b, b_rate)
                     for a in range(runs + 1) for b in range(runs + 1)
                     if fisher_exact(a, runs, b, runs) <= alpha * (1.0 + 1e-9)))


# Flipped mean differences within this of the observed one count as equal to it: float rounding
# must not decide a tie (0.1 + 0.2 - 0.3 is not 0.0). Absolute, for scores of order 1 or 100.
TIE_TOLERANCE = 1e-9

# Which flipped means are "at least as extreme" as the observed one, per alternative hypothesis.
_AS_EXTREME = {
    "greater": lambda flipped, observed: flipped >= observed - TIE_TOLERANCE,
    "less": lambda flipped, observed: flipped <= observed + TIE_TOLERANCE,
    "two-sided": lambda flipped, observed: abs(flipped) >= abs(observed) - TIE_TOLERANCE,
}


def sign_flip_p(a: Sequence[float], b: Sequence[float], alternative: str = "greater") -> float:
    """Exact paired permutation (sign-flip) p-value of the mean difference ``a - b`` over seeds.

    ``a[i]`` and ``b[i]`` are two settings' scores with seed ``i``. If the setting does not
    matter, the two runs of a seed are interchangeable, so the difference ``a[i] - b[i]`` was as
    likely to come out with the opposite sign; all 2**n assignments of signs to the n differences
    are then equally likely. The p-value is the fraction of them whose mean difference is at
    least the observed one (``"greater"``: is ``a`` better?), at most it (``"less"``), or at
    least it in absolute value (``"two-sided"``); a mean within :data:`TIE_TOLERANCE` of the
    observed one counts as equal. The observed assignment is one of them, so p >= 1 / 2**n:
    five seeds can never give less than 1/32 = 0.031 one-sided. A zero difference is the same
    with either sign (it doubles every count and changes no p). Unlike the t test it assumes
    no normal distribution of the differences, only their symmetry about 0 under the null.

    >>> sign_flip_p([0.8, 0.7, 0.9], [0.3, 0.4, 0.2])  # every seed gains: only the observed assignment
    0.125
    >>> sign_flip_p([0.8, 0.7, 0.3], [0.3, 0.4, 0.5])  # gains 0.5, 0.3, -0.2: observed sum 0.6; also +0.5 +0.3 +0.2
    0.25
    >>> sign_flip_p([0.8, 0.7, 0.3], [0.3, 0.4, 0.5], alternative="two-sided")
    0.5
    """
    if len(a) != len(b):
        raise ValueError(f"paired runs need the same seeds on both sides, got {len(a)} and {len(b)} values")
    if not 1 <= len(a) <= 20:
        raise ValueError(f"an exact sign-flip test enumerates 2**n assignments: it needs 1 to 20 seeds, got {len(a)}")
    if alternative not in _AS_EXTREME:
        raise ValueError(f"alternative must be one of {sorted(_AS_EXTREME)}, got {alternative!r}")
    differences = [float(x) - float(y) for x, y in zip(a, b)]
    n = len(differences)
    observed = sum(differences) / n
    as_extreme = _AS_EXTREME[alternative]
    count = sum(as_extreme(sum(s * d for s, d in zip(signs, differences)) / n, observed)
                for signs in itertools.product((1, -1), repeat=n))
    return count / 2 ** n


def finite_mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are numbers (None and NaN left out); None if there are none.

    >>> finite_mean([0.2, None, float("nan"), 0.4])
    0.30000000000000004
    """
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(kept) / len(kept) if kept else None


def context_miou(iou: Sequence[float | None], classes: Sequence[int]) -> float:
    """Mean IoU over ``classes`` (e.g. the context classes), ignoring those absent (NaN or None).

    >>> context_miou([0.5, float("nan"), 0.9, 0.1], [0, 1, 2])
    0.7
    """
    mean = finite_mean(iou[c] for c in classes)
    return float("nan") if mean is None else mean


@dataclass(frozen=True)
class Comparison:
    """Setting ``a`` against setting ``b`` on some classes, seed by seed (the runs paired by seed)."""

    a: str
    b: str
    classes: tuple[int, ...]
    seeds: tuple[int, ...]
    gains: tuple[float, ...]  # per seed: IoU of a minus IoU of b, averaged over the classes
    mean: float
    low: float  # two-sided 95 % confidence interval of the mean gain
    high: float
    t: float
    critical: float  # two-sided 5 % critical value of Student's t with n - 1 degrees of freedom

    @property
    def significant(self) -> bool:
        """True if the gain is beyond seed noise: |t| above the 5 % critical value."""
        return abs(self.t) > self.critical


def compare_settings(results: dict, a: str, b: str, classes: Sequence[int]) -> Comparison:
    """Paired comparison of two settings of a ``run_settings`` results file on ``classes``.

    For each seed both settings ran, the gain is the mean IoU over ``classes`` of ``a`` minus
    that of ``b``; the runs with the same seed share initialisation, data order and augmentation,
    so pairing removes most of the seed-to-seed spread.

    >>> runs = lambda values: {"runs": [{"seed": s, "iou": [v]} for s, v in enumerate(values)]}
    >>> result = compare_settings({"settings": {"x": runs([0.6, 0.7, 0.65]), "y": runs([0.4, 0.5, 0.5])}}, "x", "y", [0])
    >>> round(result.mean, 3), round(result.t, 2), result.significant
    (0.183, 11.0, True)
    """
    by_seed = {name: {run["seed"]: run for run in results["settings"][name]["runs"]} for name in (a, b)}
    seeds = tuple(sorted(set(by_seed[a]) & set(by_seed[b])))
    if len(seeds) < 2:
        raise ValueError(f"{a!r} and {b!r} share {len(seeds)} seed(s); a paired comparison needs at least two")
    gains = tuple(context_miou(by_seed[a][s]["iou"], classes) - context_miou(by_seed[b][s]["iou"], classes)
                  for s in seeds)
    mean, low, high = paired_interval(gains, [0.0] * len(gains))
    t = paired_t(gains, [0.0] * len(gains)) if len(set(gains)) > 1 else math.copysign(math.inf, mean)
    return Comparison(a, b, tuple(classes), seeds, gains, mean, low, high, t, T_CRITICAL_95[len(seeds) - 1])
