"""Self-checks for notebooks/09_ablations.ipynb: summarising runs over seeds, honestly.

An ablation compares settings that were each trained with a few seeds. Two small pieces of
statistics decide what such a comparison can claim:

- :func:`check_mean_and_spread`: ``my_mean_and_spread(values)`` -> ``(mean, spread)``, the
  mean over seeds and the *sample* standard deviation (divide by n - 1), against
  :func:`mean_and_spread` (= :func:`statistics.mean` and :func:`statistics.stdev`);
- :func:`check_paired_t`: ``my_paired_t(a, b)``, the paired t statistic of two settings run
  with the same seeds (``a[i]`` and ``b[i]`` share seed ``i``), against :func:`paired_t`.

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
from pspnet_edu.experiments.stats import T_CRITICAL_95, mean_and_spread, paired_t

__all__ = ["T_CRITICAL_95", "check_mean_and_spread", "check_paired_t", "mean_and_spread", "paired_t"]

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
