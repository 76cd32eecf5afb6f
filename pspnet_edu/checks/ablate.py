"""Self-checks for notebooks/09_ablations.ipynb: summarising runs over seeds, honestly.

An ablation compares settings that were each trained with a few seeds. Two small pieces of
statistics decide what such a comparison can claim:

- :func:`check_mean_and_spread`: ``my_mean_and_spread(values)`` -> ``(mean, spread)``, the
  mean over seeds and the *sample* standard deviation (divide by n - 1), against
  :func:`mean_and_spread` (= :func:`statistics.mean` and :func:`statistics.stdev`);
- :func:`check_paired_t`: ``my_paired_t(a, b)``, the paired t statistic of two settings run
  with the same seeds (``a[i]`` and ``b[i]`` share seed ``i``), against :func:`paired_t`;
- :func:`check_fisher_exact`: ``my_fisher_exact(a_hits, a_runs, b_hits, b_runs)``, the one-sided
  p-value of Fisher's exact test for all-or-nothing outcomes (how many seeds learn a pair),
  against :func:`pspnet_edu.experiments.stats.fisher_exact`.

While the learner's function runs, the package's function it re-derives is hidden (``*_HIDDEN``
below; :func:`pspnet_edu.checks._core.hidden`). :mod:`statistics` and numpy are not: the
exercise is to know which spread (n - 1) and which t (paired) to compute, and the hints name
``statistics.stdev`` and ``np.std(values, ddof=1)`` as right ways to get the spread.

The references are :mod:`pspnet_edu.experiments.stats`, which the sweeps use too;
``tests/test_checks_ablate.py`` shows they equal the standard library and a textbook value
(Student's sleep data, t = -4.0621).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from pspnet_edu.checks._core import Case, check_cases
from pspnet_edu.experiments.stats import T_CRITICAL_95, compare_settings, fisher_exact, mean_and_spread, paired_t

__all__ = ["T_CRITICAL_95", "check_compare_settings", "check_fisher_exact", "check_mean_and_spread", "check_paired_t",
           "mean_and_spread", "paired_t"]

# What each check hides while the learner's code runs.
MEAN_AND_SPREAD_HIDDEN = (mean_and_spread,)
PAIRED_T_HIDDEN = (paired_t,)

# ------------------------------------------------------------------ mean and spread

_SPREAD_CASES = (
    Case(([0.60, 0.64],), hint="two seeds, the course's default."),
    Case(([0.612, 0.587, 0.641],), hint="three seeds."),
    Case(([0.5, 0.5],), hint="two identical runs: no spread."),
    Case(([0.31, 0.42, 0.28, 0.45, 0.36],), hint="five seeds."),
    Case(([41.07, 40.62, 41.35, 40.88],), hint="paper-sized numbers, in %."),
)


def _spread_diagnose(case: Case, expected: Any, got: Any) -> str:
    (values,) = case.args
    mean, spread = expected
    base = ("return (mean, sample standard deviation): sqrt(sum((v - mean)**2) / (n - 1)), as statistics.stdev "
            "or np.std(values, ddof=1).")
    try:
        got_mean, got_spread = got
    except (TypeError, ValueError):
        return "return a tuple of two numbers, (mean, spread). " + base
    if not math.isclose(got_mean, mean, rel_tol=1e-6, abs_tol=1e-9):
        return "the first number should be the mean over seeds. " + base
    slips = {
        "you divided by n (the population standard deviation, np.std's default ddof=0; for two values it is "
        "also half the range); a few seeds are a sample of all possible seeds, so divide by n - 1 "
        "(np.std(values, ddof=1)): with 2 seeds, dividing by n understates the spread by a factor sqrt(2).":
            statistics.pstdev(values),
        "that is the variance; the spread is its square root, in the units of the scores.": spread ** 2,
        "that is half the range (max - min) / 2, not the standard deviation.": (max(values) - min(values)) / 2,
        "that is the range max - min, not the standard deviation.": max(values) - min(values),
    }
    for hint, wrong in slips.items():
        if spread and math.isclose(got_spread, wrong, rel_tol=1e-6, abs_tol=1e-12):
            return hint
    return base


def check_mean_and_spread(my_mean_and_spread: Callable[[Sequence[float]], tuple[float, float]]) -> None:
    """Check ``my_mean_and_spread(values)`` -> ``(mean, sample standard deviation)`` on 5 cases.

    >>> import numpy as np
    >>> check_mean_and_spread(lambda v: (float(np.mean(v)), float(np.std(v, ddof=1))))
    ✓ <lambda> matches statistics.mean and statistics.stdev on 5 cases
    """
    check_cases(my_mean_and_spread, mean_and_spread, _SPREAD_CASES, hide=MEAN_AND_SPREAD_HIDDEN,
                hint=_spread_diagnose, against="statistics.mean and statistics.stdev")


# ------------------------------------------------------------------ paired t

_SLEEP_A = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
_SLEEP_B = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
_PAIRED_CASES = (
    Case(([0.60, 0.66], [0.40, 0.50]), hint="two seeds, a clear gain."),
    Case(([0.52, 0.48, 0.55], [0.50, 0.49, 0.51]), hint="three seeds, a small gain."),
    Case(([0.70, 0.40], [0.60, 0.35]),
         hint="the seeds differ much more than the settings do: pairing removes that."),
    Case(([0.35, 0.41, 0.38, 0.36], [0.37, 0.44, 0.37, 0.40]), hint="a loss: t is negative."),
    Case((_SLEEP_A, _SLEEP_B), hint="Student's sleep data (1908): t = -4.0621."),
)


def _welch_t(a: Sequence[float], b: Sequence[float]) -> float:
    (mean_a, sd_a), (mean_b, sd_b) = mean_and_spread(a), mean_and_spread(b)
    return (mean_a - mean_b) / math.sqrt(sd_a ** 2 / len(a) + sd_b ** 2 / len(b))


def _paired_diagnose(case: Case, expected: Any, got: Any) -> str:
    a, b = case.args
    n = len(a)
    d = [x - y for x, y in zip(a, b)]
    mean, spread = statistics.mean(d), statistics.stdev(d)
    base = "d = a - b per seed; t = mean(d) / (stdev(d) / sqrt(n)) with the sample stdev (n - 1)."
    if not isinstance(got, (int, float)):
        return "return one number, the t statistic. " + base
    slips = {
        "the sign is flipped: use d = a - b, so that t > 0 means a is better.": -expected,
        "divide the standard deviation by sqrt(n) (the standard error of the mean difference).": mean / spread,
        "use the sample standard deviation of d (divide by n - 1), as in my_mean_and_spread.":
            mean / (statistics.pstdev(d) / math.sqrt(n)),
        "that is the unpaired (Welch) t: it treats the two settings as independent. Runs with the same seed "
        "share data order, augmentation and initial weights; subtract per seed first, then average.":
            _welch_t(a, b),
    }
    for hint, wrong in slips.items():
        if math.isfinite(wrong) and math.isclose(got, wrong, rel_tol=1e-6, abs_tol=1e-9):
            return hint + " " + base
    return base


def check_paired_t(my_paired_t: Callable[[Sequence[float], Sequence[float]], float]) -> None:
    """Check ``my_paired_t(a, b)`` -> the paired t statistic of ``a - b`` on 5 cases.

    >>> import statistics
    >>> def my_paired_t(a, b):
    ...     d = [x - y for x, y in zip(a, b)]
    ...     return statistics.mean(d) / (statistics.stdev(d) / len(d) ** 0.5)
    >>> check_paired_t(my_paired_t)
    ✓ my_paired_t matches pspnet_edu.experiments.stats.paired_t on 5 cases
    """
    check_cases(my_paired_t, paired_t, _PAIRED_CASES, hide=PAIRED_T_HIDDEN, hint=_paired_diagnose)


# ------------------------------------------------------------------ a paired comparison from a results file

COMPARE_HIDDEN = (compare_settings, paired_t, mean_and_spread)


def _results(**settings: list[tuple[int, list[float | None]]]) -> dict[str, Any]:
    """A ``run_settings``-shaped results dict: setting -> [(seed, iou per class), ...]."""
    return {"settings": {name: {"runs": [{"seed": seed, "iou": iou} for seed, iou in runs]}
                         for name, runs in settings.items()}}


def _reference_compare(results: dict[str, Any], a: str, b: str, classes: Sequence[int]) -> tuple[float, float]:
    comparison = compare_settings(results, a, b, classes)
    return comparison.mean, comparison.t


_COMPARE_CASES = (
    Case((_results(x=[(0, [0.8, 0.7]), (1, [0.7, 0.75]), (2, [0.9, 0.8])],
                   y=[(0, [0.3, 0.35]), (1, [0.4, 0.3]), (2, [0.35, 0.3])]), "x", "y", [0, 1]),
         hint="three seeds, a pair of two classes: average the pair per seed, then compare seed by seed."),
    Case((_results(x=[(0, [0.8, 0.1]), (1, [0.7, 0.2]), (2, [0.6, 0.3])],
                   y=[(0, [0.3, 0.9]), (1, [0.4, 0.9]), (2, [0.2, 0.8])]), "x", "y", [0]),
         hint="only class 0 counts here."),
    Case((_results(x=[(2, [0.6]), (0, [0.8]), (1, [0.7])], y=[(0, [0.5]), (1, [0.55]), (2, [0.5])]), "x", "y", [0]),
         hint="the runs are not listed in seed order: pair them by their 'seed', not by position."),
    Case((_results(x=[(0, [0.8]), (1, [0.7]), (2, [0.6]), (3, [0.9])], y=[(0, [0.5]), (1, [0.6]), (3, [0.5])]),
          "x", "y", [0]), hint="seed 2 ran for x only: compare the seeds both settings ran."),
    Case((_results(x=[(0, [0.8, None]), (1, [0.7, None])], y=[(0, [0.5, 0.4]), (1, [0.6, 0.3])]), "x", "y", [0, 1]),
         hint="a class absent from a run (None) is left out of that run's average, not counted as 0."),
    Case((_results(x=[(0, [0.3]), (1, [0.4]), (2, [0.32])], y=[(0, [0.35]), (1, [0.41]), (2, [0.36])]), "x", "y", [0]),
         hint="a loss: the mean gain and t are negative."),
)


def _compare_diagnose(case: Case, expected: Any, got: Any) -> str:
    base = ("per seed that both settings ran: gain = mean IoU of a over the classes - that of b (classes absent from "
            "a run left out); return (mean gain, paired t of the gains) with the sample standard deviation (n - 1).")
    try:
        mean, t = got
    except (TypeError, ValueError):
        return "return a tuple of two numbers, (mean gain, t). " + base
    if isinstance(mean, float) and abs(mean + expected[0]) < 1e-9 and expected[0]:
        return "the sign is flipped: the gain is a minus b. " + base
    return base


def check_compare_settings(my_compare: Callable[..., tuple[float, float]]) -> None:
    """Check ``my_compare(results, a, b, classes)`` -> ``(mean gain, t)`` of a over b on 6 cases.

    >>> import statistics
    >>> def my_compare(results, a, b, classes):
    ...     runs = {name: {r["seed"]: r for r in results["settings"][name]["runs"]} for name in (a, b)}
    ...     def pair(run):
    ...         values = [run["iou"][c] for c in classes if run["iou"][c] is not None]
    ...         return sum(values) / len(values)
    ...     gains = [pair(runs[a][s]) - pair(runs[b][s]) for s in sorted(set(runs[a]) & set(runs[b]))]
    ...     mean = statistics.mean(gains)
    ...     return mean, mean / (statistics.stdev(gains) / len(gains) ** 0.5)
    >>> check_compare_settings(my_compare)
    ✓ my_compare matches pspnet_edu.experiments.stats.compare_settings on 6 cases
    """
    check_cases(my_compare, _reference_compare, _COMPARE_CASES, hide=COMPARE_HIDDEN, hint=_compare_diagnose,
                against="pspnet_edu.experiments.stats.compare_settings")


# ------------------------------------------------------------------ counting seeds: Fisher's exact test

FISHER_EXACT_HIDDEN = (fisher_exact,)
_FISHER_CASES = (
    Case((3, 5, 0, 5), hint="3 of 5 seeds against 0 of 5: p = C(5,3) C(5,0) / C(10,3) = 10/120."),
    Case((9, 10, 1, 10), hint="9 of 10 against 1 of 10."),
    Case((10, 10, 0, 10), hint="10 of 10 against 0 of 10: the most lopsided split, p = 1 / C(20,10)."),
    Case((2, 4, 2, 4), hint="no difference at all."),
    Case((0, 3, 3, 3), hint="a worse than b: p = 1 (every split is at least this lopsided towards a)."),
    Case((4, 6, 1, 7), hint="unequal numbers of runs."),
    Case((5, 5, 5, 5), hint="both always succeed: nothing to tell apart."),
)


def _fisher_two_sided(a_hits: int, a_runs: int, b_hits: int, b_runs: int) -> float:
    hits, total = a_hits + b_hits, a_runs + b_runs
    probability = [math.comb(a_runs, k) * math.comb(b_runs, hits - k) / math.comb(total, hits)
                   for k in range(max(0, hits - b_runs), min(a_runs, hits) + 1)]
    seen = math.comb(a_runs, a_hits) * math.comb(b_runs, b_hits) / math.comb(total, hits)
    return min(1.0, sum(p for p in probability if p <= seen * (1 + 1e-9)))


def _fisher_diagnose(case: Case, expected: Any, got: Any) -> str:
    base = ("given the total number of successes, every way to deal them out to the two settings is equally likely "
            "(hypergeometric: C(a_runs, k) C(b_runs, hits - k) / C(runs, hits)); p sums that probability over the "
            "splits that give a at least a_hits successes, the one seen included. math.comb counts the ways.")
    if not isinstance(got, (int, float)):
        return "return one number, the p-value. " + base
    a_hits, a_runs, b_hits, b_runs = case.args
    hits, total = a_hits + b_hits, a_runs + b_runs
    only_seen = math.comb(a_runs, a_hits) * math.comb(b_runs, b_hits) / math.comb(total, hits)
    if abs(got - only_seen) < 1e-12 and abs(expected - only_seen) > 1e-12:
        return "that is the probability of the split seen alone; add every split more lopsided towards a. " + base
    if abs(got - (expected - only_seen)) < 1e-12:
        return "the split seen belongs in the sum too (at least a_hits, not more than a_hits). " + base
    if abs(got - _fisher_two_sided(*case.args)) < 1e-12 and abs(expected - got) > 1e-12:
        return ("that is the two-sided p; the question is one-sided: does a learn MORE often than b? " + base)
    return base


def check_fisher_exact(my_fisher_exact: Callable[[int, int, int, int], float]) -> None:
    """Check ``my_fisher_exact(a_hits, a_runs, b_hits, b_runs)`` -> the one-sided p-value on 7 cases.

    >>> import math
    >>> def my_fisher_exact(a_hits, a_runs, b_hits, b_runs):
    ...     hits, total = a_hits + b_hits, a_runs + b_runs
    ...     ways = lambda k: math.comb(a_runs, k) * math.comb(b_runs, hits - k)
    ...     return sum(ways(k) for k in range(a_hits, min(a_runs, hits) + 1)) / math.comb(total, hits)
    >>> check_fisher_exact(my_fisher_exact)
    ✓ my_fisher_exact matches pspnet_edu.experiments.stats.fisher_exact on 7 cases
    """
    check_cases(my_fisher_exact, fisher_exact, _FISHER_CASES, hide=FISHER_EXACT_HIDDEN, hint=_fisher_diagnose,
                rtol=1e-9, atol=1e-12)
