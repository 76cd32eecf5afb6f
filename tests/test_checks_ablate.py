"""Tests for pspnet_edu/checks/ablate.py (the self-checks of notebook 09)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from pspnet_edu.checks.ablate import (
    _PAIRED_CASES,
    _SPREAD_CASES,
    T_CRITICAL_95,
    check_mean_and_spread,
    check_paired_t,
    mean_and_spread,
    paired_t,
)


def numpy_paired_t(a, b):
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return float(d.mean() / (d.std(ddof=1) / np.sqrt(len(d))))


def test_references_equal_the_libraries():
    for case in _SPREAD_CASES:
        (values,) = case.args
        mean, spread = mean_and_spread(values)
        assert mean == pytest.approx(float(np.mean(values))) and spread == pytest.approx(float(np.std(values, ddof=1)))
    for case in _PAIRED_CASES:
        assert paired_t(*case.args) == pytest.approx(numpy_paired_t(*case.args))


def test_paired_t_reproduces_students_sleep_data():
    # Cushny & Peebles' sleep data as analysed by "Student" (1908); R: t.test(paired=TRUE) gives t = -4.0621.
    a, b = _PAIRED_CASES[-1].args
    assert paired_t(a, b) == pytest.approx(-4.0621, abs=1e-4)
    assert abs(paired_t(a, b)) > T_CRITICAL_95[len(a) - 1]  # significant at 5 % with df = 9


def test_references_reject_what_they_cannot_compute():
    with pytest.raises(ValueError, match="at least two seeds"):
        mean_and_spread([0.5])
    with pytest.raises(ValueError, match="same seeds"):
        paired_t([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="undefined"):
        paired_t([0.5, 0.6], [0.4, 0.5])


def test_t_table_is_decreasing_towards_the_normal_value():
    values = [T_CRITICAL_95[df] for df in sorted(T_CRITICAL_95)]
    assert values == sorted(values, reverse=True) and values[-1] > 1.96


def test_mean_and_spread_right_answer_passes(capsys):
    def my_mean_and_spread(values):
        return statistics.mean(values), statistics.stdev(values)

    check_mean_and_spread(my_mean_and_spread)
    assert capsys.readouterr().out == "✓ my_mean_and_spread matches statistics.mean and statistics.stdev on 5 cases\n"


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda v: (float(np.mean(v)), float(np.std(v))), "divided by n"),  # numpy's default ddof=0
        (lambda v: (statistics.mean(v), statistics.variance(v)), "that is the variance"),
        (lambda v: (statistics.mean(v), (max(v) - min(v)) / 2), "half the range"),
        (lambda v: (statistics.median(v), statistics.stdev(v)), "should be the mean"),
        (lambda v: statistics.mean(v), "tuple of two numbers"),
    ],
)
def test_mean_and_spread_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_mean_and_spread(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value)


def test_paired_t_right_answer_passes(capsys):
    def my_paired_t(a, b):
        return numpy_paired_t(a, b)

    check_paired_t(my_paired_t)
    assert capsys.readouterr().out == "✓ my_paired_t matches pspnet_edu.experiments.stats.paired_t on 5 cases\n"


def welch(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float((a.mean() - b.mean()) / math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))


def no_sqrt_n(a, b):
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return float(d.mean() / d.std(ddof=1))


def population(a, b):
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return float(d.mean() / (d.std() / np.sqrt(len(d))))


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (welch, "unpaired (Welch)"),
        (no_sqrt_n, "sqrt(n)"),
        (population, "sample standard deviation"),
        (lambda a, b: numpy_paired_t(b, a), "sign is flipped"),
    ],
)
def test_paired_t_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_paired_t(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value)


def test_compare_settings_pairs_by_seed_and_names_the_mistakes():
    import statistics

    from pspnet_edu.checks.ablate import check_compare_settings

    def by_position(results, a, b, classes):  # pairs the runs by position, not by seed
        gains = [sum(x["iou"][c] for c in classes) / len(classes) - sum(y["iou"][c] for c in classes) / len(classes)
                 for x, y in zip(results["settings"][a]["runs"], results["settings"][b]["runs"])]
        mean = statistics.mean(gains)
        return mean, mean / (statistics.stdev(gains) / len(gains) ** 0.5)

    with pytest.raises(AssertionError, match="pair them by their 'seed'"):
        check_compare_settings(by_position)

    def flipped(results, a, b, classes):
        mean, t = by_seed(results, b, a, classes)
        return mean, t

    def by_seed(results, a, b, classes):
        runs = {n: {r["seed"]: r for r in results["settings"][n]["runs"]} for n in (a, b)}
        def pair(run):
            values = [run["iou"][c] for c in classes if run["iou"][c] is not None]
            return sum(values) / len(values)
        gains = [pair(runs[a][s]) - pair(runs[b][s]) for s in sorted(set(runs[a]) & set(runs[b]))]
        mean = statistics.mean(gains)
        return mean, mean / (statistics.stdev(gains) / len(gains) ** 0.5)

    with pytest.raises(AssertionError, match="the sign is flipped"):
        check_compare_settings(flipped)


def test_fisher_exact_check_passes_a_right_answer_and_names_the_plausible_mistakes(capsys):
    from pspnet_edu.checks.ablate import check_fisher_exact

    def ways(a_hits, a_runs, b_hits, b_runs, k):
        return math.comb(a_runs, k) * math.comb(b_runs, a_hits + b_hits - k) / math.comb(a_runs + b_runs, a_hits + b_hits)

    def right(a_hits, a_runs, b_hits, b_runs):
        return sum(ways(a_hits, a_runs, b_hits, b_runs, k) for k in range(a_hits, min(a_runs, a_hits + b_hits) + 1))

    check_fisher_exact(right)
    assert capsys.readouterr().out.startswith("✓ right matches pspnet_edu.experiments.stats.fisher_exact on 7 cases")

    def only_the_split_seen(a_hits, a_runs, b_hits, b_runs):
        return ways(a_hits, a_runs, b_hits, b_runs, a_hits)

    def strictly_more(a_hits, a_runs, b_hits, b_runs):
        return right(a_hits, a_runs, b_hits, b_runs) - ways(a_hits, a_runs, b_hits, b_runs, a_hits)

    def two_sided(a_hits, a_runs, b_hits, b_runs):
        from pspnet_edu.checks.ablate import _fisher_two_sided
        return _fisher_two_sided(a_hits, a_runs, b_hits, b_runs)

    for wrong, hint in ((only_the_split_seen, "the split seen alone"), (strictly_more, "the split seen belongs"),
                        (two_sided, "two-sided")):
        with pytest.raises(AssertionError) as info:
            check_fisher_exact(wrong)
        assert hint in str(info.value), str(info.value)
