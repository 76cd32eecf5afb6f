"""Self-checks for notebooks/09_ablations.ipynb: summarising runs over seeds, honestly.

An ablation compares settings that were each trained with a few seeds. A few pieces of
statistics decide what such a comparison can claim (the mean and sample spread over seeds,
``mean_and_spread``, is a worked example in the lesson, not an exercise):

- :func:`check_paired_t`: ``my_paired_t(a, b)``, the paired t statistic of two settings run
  with the same seeds (``a[i]`` and ``b[i]`` share seed ``i``), against :func:`paired_t`;
- :func:`check_compare_settings`: ``my_compare(results, a, b, classes)``, the paired comparison of
  two settings of a results file, against :func:`pspnet_edu.experiments.stats.compare_settings`;
- :func:`check_fisher_exact`: ``my_fisher_exact(a_hits, a_runs, b_hits, b_runs)``, the one-sided
  p-value of Fisher's exact test for all-or-nothing outcomes (how many seeds learn a pair),
  against :func:`pspnet_edu.experiments.stats.fisher_exact`;
- :func:`check_sign_flip_p`: ``my_sign_flip_p(a, b)``, the one-sided p-value of the exact paired
  permutation (sign-flip) test of the mean difference, against
  :func:`pspnet_edu.experiments.stats.sign_flip_p`;
- :func:`check_fisher_power`: ``my_fisher_power(a_rate, b_rate, runs, alpha)``, how often Fisher's
  test finds a difference in learning rates with ``runs`` seeds per setting (a seed budget's
  power), against :func:`pspnet_edu.experiments.stats.fisher_power`.

While the learner's function runs, the package's function it re-derives is hidden (``*_HIDDEN``
below; :func:`pspnet_edu.checks._core.hidden`), and so are scipy's versions of the two exact
tests (``scipy.stats.fisher_exact``, ``hypergeom``, ``barnard_exact``, ``boschloo_exact``,
``permutation_test``) if scipy is installed: the course does not need scipy, but a learner may
have it. :mod:`statistics`, :mod:`math` and numpy are not hidden: the exercises are to know which
spread (n - 1), which t (paired) and which assignments to count, and ``math.comb`` and
``statistics.stdev`` are the right tools for them.

The references are :mod:`pspnet_edu.experiments.stats`, which the sweeps use too;
``tests/test_checks_ablate.py`` and ``tests/test_experiments_stats.py`` show they equal numpy, a
textbook value (Student's sleep data, t = -4.0621) and brute-force enumerations.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import random
import statistics
import types
from collections.abc import Callable, Sequence
from typing import Any

from pspnet_edu.checks._core import Case, check_cases
from pspnet_edu.experiments.stats import (TIE_TOLERANCE, T_CRITICAL_95, compare_settings, fisher_exact, fisher_power,
                                          mean_and_spread, paired_t, sign_flip_p)

__all__ = ["FISHER_POWER_HIDDEN", "T_CRITICAL_95", "check_compare_settings", "check_fisher_exact",
           "check_fisher_power", "check_paired_t", "check_sign_flip_p", "fisher_exact_hidden", "mean_and_spread",
           "paired_t", "scipy_stats", "sign_flip_hidden"]


def scipy_stats() -> types.ModuleType | None:
    """``scipy.stats`` if scipy is installed, else None.

    The course does not depend on scipy, but a learner who has it could call its exact tests
    instead of writing them; imported here, before the learner's code runs, so that they can be
    hidden (also from ``from scipy.stats import fisher_exact`` inside the learner's function).
    """
    if importlib.util.find_spec("scipy") is None:
        return None
    return importlib.import_module("scipy.stats")


def _scipy_versions(*names: str) -> tuple[Any, ...]:
    """The objects ``scipy.stats.<name>`` that exist (none without scipy; older scipy lacks some)."""
    module = scipy_stats()
    return () if module is None else tuple(getattr(module, name) for name in names if hasattr(module, name))


# ------------------------------------------------------------------ paired t

PAIRED_T_HIDDEN = (paired_t,)
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
        "use the sample standard deviation of d (divide by n - 1), as my_mean_and_spread does.":
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

FISHER_EXACT_HIDDEN = (fisher_exact,)  # and scipy's exact tests of a 2x2 table, if installed


def fisher_exact_hidden() -> tuple[Any, ...]:
    """What :func:`check_fisher_exact` hides: the package's ``fisher_exact`` and, with scipy
    installed, ``scipy.stats.fisher_exact``, ``hypergeom`` (its survival function is the
    p-value), ``barnard_exact`` and ``boschloo_exact``."""
    return (*FISHER_EXACT_HIDDEN, *_scipy_versions("fisher_exact", "hypergeom", "barnard_exact", "boschloo_exact"))

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
    check_cases(my_fisher_exact, fisher_exact, _FISHER_CASES, hide=fisher_exact_hidden(), hint=_fisher_diagnose,
                rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ the exact paired permutation (sign-flip) test

SIGN_FLIP_HIDDEN = (sign_flip_p,)  # and scipy.stats.permutation_test, if installed


def sign_flip_hidden() -> tuple[Any, ...]:
    """What :func:`check_sign_flip_p` hides: the package's ``sign_flip_p`` and, with scipy
    installed, ``scipy.stats.permutation_test`` (``permutation_type="samples"`` flips signs)."""
    return (*SIGN_FLIP_HIDDEN, *_scipy_versions("permutation_test"))


# Per-seed bus / train IoU (the mean of the two classes) of seeds 0-9, read from the previous recipe's
# ten-seed ablation (heads at 10x, where the FCN read the glow in two seeds):
# results/lottery/ablate_ppm_10seeds_heads10x.json (settings -> runs -> iou[15], iou[16]); a test compares them.
PPM10_BUS_TRAIN = {
    "B1236-avg": (0.8049112375301952, 0.8094007314948879, 0.7978389083642228, 0.7762739267124759, 0.8220812279010081,
                  0.8105362509071573, 0.7861048669627821, 0.25156017985645984, 0.8067421040937575, 0.7627727954980066),
    "none": (0.20018496808290523, 0.2575586321617748, 0.3148386343582219, 0.8163243488034231, 0.33608157714509235,
             0.29990185359530264, 0.28203118541444067, 0.6847789561278625, 0.35580599909072635, 0.24159809826108225),
    "B1236-control": (0.2275022876085442, 0.3016045123780041, 0.3934972427696305, 0.3011868392754697,
                      0.3423421224177645, 0.31302611943977665, 0.30983300541692865, 0.25585689364045927,
                      0.3027243083546447, 0.22084046996056797),
}


def _two_decimal_runs(seed: int, n: int) -> tuple[list[float], list[float]]:
    """Two settings' scores over n seeds with two decimals, as a table prints them: ties abound."""
    rng = random.Random(seed)
    return [round(rng.uniform(0.3, 0.8), 2) for _ in range(n)], [round(rng.uniform(0.3, 0.8), 2) for _ in range(n)]


_SIGN_FLIP_CASES = (
    Case(([0.8, 0.7, 0.9], [0.3, 0.4, 0.2]),
         hint="three seeds, every one a gain: of the 2^3 sign assignments only the observed one has a mean this "
              "large, p = 1/8."),
    Case((list(PPM10_BUS_TRAIN["B1236-avg"][:5]), list(PPM10_BUS_TRAIN["B1236-control"][:5])),
         hint="bus / train, B1236-avg against B1236-control, seeds 0-4 of "
              "results/lottery/ablate_ppm_10seeds_heads10x.json: five gains, p = 1/32, the smallest p five seeds "
              "can give."),
    Case((list(PPM10_BUS_TRAIN["B1236-avg"]), list(PPM10_BUS_TRAIN["none"])),
         hint="bus / train, B1236-avg against none, seeds 0-9 of results/lottery/ablate_ppm_10seeds_heads10x.json: "
              "two seeds (3 and 7) go the other way."),
    Case((list(PPM10_BUS_TRAIN["B1236-avg"]), list(PPM10_BUS_TRAIN["B1236-control"])),
         hint="bus / train, B1236-avg against B1236-control, seeds 0-9: seed 7 loses by 0.004."),
    Case(([0.71, 0.52, 0.4], [0.61, 0.32, 0.7]),
         hint="differences 0.1, 0.2, -0.3: the observed mean is 0 up to float rounding, and so is the mean with "
              "every sign flipped; that tie counts as 'at least as large'."),
    Case(([0.5, 0.6, 0.4, 0.7], [0.3, 0.6, 0.3, 0.7]),
         hint="two seeds with no difference: flipping a zero changes nothing, and each of its signs is still an "
              "assignment (leaving the zeros out gives the same p)."),
    Case(([0.5, 0.6, 0.7], [0.5, 0.6, 0.7]),
         hint="no seed tells the settings apart: every assignment ties with the observed mean 0, p = 1."),
    Case(([0.7], [0.4]), hint="one seed, a gain: two assignments, p = 1/2."),
    Case(([0.4], [0.7]), hint="one seed, a loss: both assignments are at least as large, p = 1."),
    Case(([0.35, 0.41, 0.38, 0.36, 0.30], [0.37, 0.44, 0.37, 0.40, 0.33]),
         hint="a loss over five seeds: the one-sided p for 'a better than b' is large."),
    Case(([0.51, 0.52, 0.53, 0.2, 0.54], [0.5, 0.5, 0.5, 0.7, 0.5]),
         hint="four seeds gain a little, one loses a lot: the mean difference is negative."),
    *(Case(_two_decimal_runs(seed, n), hint=f"{n} seeds of two-decimal scores (random.Random({seed})): several "
                                            "flipped means tie with the observed one up to float rounding.")
      for seed, n in ((5, 6), (1, 7), (1, 8))),
)


def _count_at_least(differences: Sequence[float], observed: float, tolerance: float, strict: bool = False) -> int:
    """How many sign assignments of ``differences`` give a mean >= (or >) ``observed`` - ``tolerance``."""
    n = len(differences)
    means = (sum(s * d for s, d in zip(signs, differences)) / n for signs in itertools.product((1, -1), repeat=n))
    return sum(m > observed + tolerance if strict else m >= observed - tolerance for m in means)


def _sign_test(differences: Sequence[float]) -> float:
    """The one-sided sign test: P(at least as many positive differences) for fair coins."""
    n, positive = len(differences), sum(d > 0 for d in differences)
    return sum(math.comb(n, k) for k in range(positive, n + 1)) / 2 ** n


def _sign_flip_diagnose(case: Case, expected: Any, got: Any) -> str:
    a, b = case.args
    base = ("p = the fraction of the 2^n equally likely sign assignments of the per-seed differences a[i] - b[i] "
            f"whose mean is at least the observed mean (within {TIE_TOLERANCE:g}), the observed assignment included.")
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return "return one number, the p-value. " + base
    differences = [float(x) - float(y) for x, y in zip(a, b)]
    n = len(differences)
    observed = sum(differences) / n
    if isinstance(got, int) or got > 1:
        return "p is a probability: the fraction of all 2^n assignments, not their number. " + base
    if got == 0:
        return ("p = 0 is impossible: the observed assignment (every sign as it came out) is one of the 2^n and is as "
                "large as itself, so p >= 1/2^n. Compare with a tolerance, so that rounding cannot lose it. " + base)
    slips = {
        "the observed assignment (every sign as it came out) is one of the 2^n, and a mean equal to the observed one "
        "is 'at least as large': count it and every other tie. p is never 0; the smallest is 1/2^n.":
            _count_at_least(differences, observed, TIE_TOLERANCE, strict=True) / 2 ** n,
        f"a tie lost to float rounding: a flipped mean that equals the observed one only up to rounding (0.1 + 0.2 - "
        f"0.3 is 5.6e-17, not 0) counts as equal; compare with a tolerance, mean >= observed - {TIE_TOLERANCE:g}.":
            _count_at_least(differences, observed, 0.0) / 2 ** n,
        "that is the two-sided p (|mean| at least |observed|); the question is one-sided: is a better than b?":
            sign_flip_p(a, b, alternative="two-sided"),
        "that is the p of 'b better than a': the differences are a - b, and large means favour a.": sign_flip_p(b, a),
        "that is the sign test: it counts the seeds with a positive difference and ignores how large each difference "
        "is; the statistic here is the mean difference itself.": _sign_test(differences),
    }
    for hint, wrong in slips.items():
        if math.isclose(got, wrong, rel_tol=1e-9, abs_tol=1e-12):
            return hint + " " + base
    return base


def check_sign_flip_p(my_sign_flip_p: Callable[[Sequence[float], Sequence[float]], float]) -> None:
    """Check ``my_sign_flip_p(a, b)`` -> the one-sided exact sign-flip p-value of ``a - b`` on 14 cases.

    >>> import itertools
    >>> def my_sign_flip_p(a, b):
    ...     d = [x - y for x, y in zip(a, b)]
    ...     observed = sum(d) / len(d)
    ...     signs = itertools.product((1, -1), repeat=len(d))
    ...     means = [sum(s * x for s, x in zip(pattern, d)) / len(d) for pattern in signs]
    ...     return sum(m >= observed - 1e-9 for m in means) / len(means)
    >>> check_sign_flip_p(my_sign_flip_p)
    ✓ my_sign_flip_p matches pspnet_edu.experiments.stats.sign_flip_p on 14 cases
    """
    check_cases(my_sign_flip_p, sign_flip_p, _SIGN_FLIP_CASES, hide=sign_flip_hidden(), hint=_sign_flip_diagnose,
                rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ planning a seed budget: the power of Fisher's test

FISHER_POWER_HIDDEN = (fisher_power,)  # fisher_exact stays: the exercise builds on exercise 3

_FISHER_POWER_CASES = (
    Case((0.9, 0.1, 10, 0.05), hint="the course's aim: seeds of a learn 9 times in 10, seeds of b once in 10; ten "
                                    "seeds each."),
    Case((1.0, 0.0, 3, 0.05), hint="every seed of a learns, none of b: the only outcome is 3/3 against 0/3, whose p "
                                   "is 1/20 = 0.05."),
    Case((0.6, 0.0, 5, 0.05), hint="the old demo recipe's rates (3 of 5 seeds read the glow, the FCN none), five "
                                   "seeds each."),
    Case((0.9, 0.2, 10, 0.05), hint="the previous recipe's ten-seed rates for the glow (heads at 10x): PSPNet 9 of "
                                    "10, the FCN 2 of 10."),
    Case((0.5, 0.5, 8, 0.05), hint="no difference at all: the power is then the test's size, the rate of false "
                                   "alarms, at most alpha."),
    Case((0.9, 0.1, 4, 0.01), hint="four seeds at 1 %: even 4/4 against 0/4 gives p = 1/70 > 0.01."),
    Case((0.3, 0.8, 6, 0.05), hint="a learns LESS often than b: the one-sided test should hardly ever say a is "
                                   "better."),
    Case((0.7, 0.2, 12, 0.05), hint="twelve seeds each: 13 x 13 outcomes."),
)


def _binomial(runs: int, k: int, rate: float) -> float:
    return math.comb(runs, k) * rate ** k * (1.0 - rate) ** (runs - k)


def _power_with(a_rate: float, b_rate: float, runs: int, rejects: Callable[[int, int], bool],
                probability: Callable[[int, int, float], float] = _binomial) -> float:
    """The probability of the outcomes (a_hits, b_hits) that ``rejects`` accepts, under independent seeds."""
    return sum(probability(runs, a, a_rate) * probability(runs, b, b_rate)
               for a in range(runs + 1) for b in range(runs + 1) if rejects(a, b))


def _fisher_power_diagnose(case: Case, expected: Any, got: Any) -> str:
    base = ("power = the probability, over the outcomes a sweep can have (how many seeds of a learn, how many of b; "
            "every seed on its own), of the outcomes whose one-sided Fisher p (exercise 3) is <= alpha.")
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return "Return one number, the power, a probability. " + base
    a_rate, b_rate, runs, alpha = case.args
    tolerance = alpha * (1.0 + 1e-9)

    def fisher(a: int, b: int) -> float:
        return fisher_exact(a, runs, b, runs)

    def no_comb(n: int, k: int, rate: float) -> float:
        return rate ** k * (1.0 - rate) ** (n - k)

    slips = {
        "An outcome whose p equals alpha is significant: reject when p <= alpha, and compare with a little "
        "tolerance, p <= alpha * (1 + 1e-9), so that float rounding cannot decide.":
            _power_with(a_rate, b_rate, runs, lambda a, b: fisher(a, b) < alpha * (1.0 - 1e-9)),
        "That is the probability that a simply shows MORE hits than b; a difference of one seed is no evidence. "
        "Count an outcome only where Fisher's test finds it (p <= alpha).":
            _power_with(a_rate, b_rate, runs, lambda a, b: a > b),
        "That uses the two-sided Fisher p; the test planned is one-sided (does a learn MORE often?).":
            _power_with(a_rate, b_rate, runs, lambda a, b: _fisher_two_sided(a, runs, b, runs) <= tolerance),
        "The probability of k hits in n seeds counts every ORDER of them: C(n, k) rate^k (1 - rate)^(n - k); without "
        "C(n, k) it is the probability of one particular sequence.":
            _power_with(a_rate, b_rate, runs, lambda a, b: fisher(a, b) <= tolerance, probability=no_comb),
        "a and b are swapped: a_rate belongs to the setting whose hits come first in fisher_exact(a_hits, runs, "
        "b_hits, runs), the one hoped to be better.":
            _power_with(b_rate, a_rate, runs, lambda a, b: fisher(a, b) <= tolerance),
        "The outcomes are summed, not averaged: each outcome's probability is already its share of the whole.":
            expected / (runs + 1) ** 2,
    }
    for hint, wrong in slips.items():
        if math.isclose(got, wrong, rel_tol=1e-9, abs_tol=1e-12) and not math.isclose(got, expected, rel_tol=1e-9,
                                                                                    abs_tol=1e-12):
            return hint
    if abs(got - expected) < 0.03:
        return ("Close, but not exact: a simulation? A sweep has only (runs + 1)^2 outcomes; take every one of them "
                "into account, no random draws. " + base)
    return base


def check_fisher_power(my_fisher_power: Callable[[float, float, int, float], float]) -> None:
    """Check ``my_fisher_power(a_rate, b_rate, runs, alpha)`` -> the power of Fisher's one-sided test, on 8 cases.

    >>> import math
    >>> from pspnet_edu.experiments.stats import fisher_exact
    >>> def my_fisher_power(a_rate, b_rate, runs, alpha=0.05):
    ...     chance = lambda k, rate: math.comb(runs, k) * rate ** k * (1 - rate) ** (runs - k)
    ...     return sum(chance(a, a_rate) * chance(b, b_rate) for a in range(runs + 1) for b in range(runs + 1)
    ...                if fisher_exact(a, runs, b, runs) <= alpha * (1 + 1e-9))
    >>> check_fisher_power(my_fisher_power)
    ✓ my_fisher_power matches pspnet_edu.experiments.stats.fisher_power on 8 cases
    """
    check_cases(my_fisher_power, fisher_power, _FISHER_POWER_CASES, hide=FISHER_POWER_HIDDEN,
                hint=_fisher_power_diagnose, rtol=1e-9, atol=1e-12)
