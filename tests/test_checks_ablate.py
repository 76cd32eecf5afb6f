"""Tests for pspnet_edu/checks/ablate.py (the self-checks of notebook 09)."""

from __future__ import annotations

import itertools
import json
import math
import sys
import types
from importlib.machinery import ModuleSpec
from pathlib import Path

import numpy as np
import pytest

import pspnet_edu.experiments.stats

from pspnet_edu.checks.ablate import _fisher_two_sided as fisher_two_sided
from pspnet_edu.checks.ablate import (
    _PAIRED_CASES,
    T_CRITICAL_95,
    check_paired_t,
    mean_and_spread,
    paired_t,
)


def numpy_paired_t(a, b):
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return float(d.mean() / (d.std(ddof=1) / np.sqrt(len(d))))


def test_references_equal_the_libraries():
    for values in ([0.60, 0.64], [0.612, 0.587, 0.641], [0.5, 0.5], [41.07, 40.62, 41.35, 40.88]):
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


# ------------------------------------------------------------------ scipy's exact tests are hidden too


@pytest.fixture
def fake_scipy(monkeypatch):
    """A stand-in for an installed scipy whose exact tests give the right answers (scipy is no dependency)."""
    scipy = types.ModuleType("scipy")
    stats = types.ModuleType("scipy.stats")
    scipy.__spec__, stats.__spec__ = ModuleSpec("scipy", None), ModuleSpec("scipy.stats", None)

    def fisher_exact(table, alternative="two-sided"):
        (a_hits, a_misses), (b_hits, b_misses) = table
        return math.inf, pspnet_edu.experiments.stats.fisher_exact(a_hits, a_hits + a_misses, b_hits, b_hits + b_misses)

    def permutation_test(data, statistic, permutation_type="independent", alternative="two-sided", **kwargs):
        return types.SimpleNamespace(pvalue=pspnet_edu.experiments.stats.sign_flip_p(*data, alternative=alternative))

    for function in (fisher_exact, permutation_test):
        function.__module__, function.__qualname__ = "scipy.stats", function.__name__
        setattr(stats, function.__name__, function)
    scipy.stats = stats
    monkeypatch.setitem(sys.modules, "scipy", scipy)
    monkeypatch.setitem(sys.modules, "scipy.stats", stats)
    return stats


def test_checks_hide_scipys_exact_tests_when_scipy_is_installed(fake_scipy):
    from pspnet_edu.checks.ablate import check_fisher_exact, check_sign_flip_p, fisher_exact_hidden, sign_flip_hidden

    assert fake_scipy.fisher_exact in fisher_exact_hidden() and fake_scipy.permutation_test in sign_flip_hidden()

    def my_fisher_exact(a_hits, a_runs, b_hits, b_runs):
        from scipy.stats import fisher_exact  # imported inside: still the hidden one

        return fisher_exact([[a_hits, a_runs - a_hits], [b_hits, b_runs - b_hits]], alternative="greater")[1]

    with pytest.raises(AssertionError) as info:
        check_fisher_exact(my_fisher_exact)
    assert str(info.value) == ("my_fisher_exact calls scipy.stats.fisher_exact, the function it is meant to replace: "
                               "write it yourself (the check hides scipy's version while it runs your code)")

    def my_sign_flip_p(a, b):
        import scipy.stats

        return scipy.stats.permutation_test((a, b), None, permutation_type="samples", alternative="greater").pvalue

    with pytest.raises(AssertionError, match="^my_sign_flip_p calls scipy.stats.permutation_test, .* write it"):
        check_sign_flip_p(my_sign_flip_p)
    assert fake_scipy.fisher_exact(((3, 2), (0, 5)))[1] == pytest.approx(10 / 120)  # put back afterwards


def test_checks_hide_the_real_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    from pspnet_edu.checks.ablate import check_fisher_exact, check_sign_flip_p

    def via_fisher(a_hits, a_runs, b_hits, b_runs):
        return float(scipy_stats.fisher_exact([[a_hits, a_runs - a_hits], [b_hits, b_runs - b_hits]],
                                              alternative="greater")[1])

    def via_hypergeom(a_hits, a_runs, b_hits, b_runs):
        return float(scipy_stats.hypergeom.sf(a_hits - 1, a_runs + b_runs, a_hits + b_hits, a_runs))

    for learner, name in ((via_fisher, "fisher_exact"), (via_hypergeom, "hypergeom")):
        assert learner(3, 5, 0, 5) == pytest.approx(10 / 120)  # right, outside a check
        with pytest.raises(AssertionError, match=f"^{learner.__name__} (calls|uses) scipy.stats.*{name}.*write it"):
            check_fisher_exact(learner)

    def via_permutation_test(a, b):
        return float(scipy_stats.permutation_test((a, b), lambda x, y: np.mean(x - y), permutation_type="samples",
                                                  alternative="greater").pvalue)

    with pytest.raises(AssertionError, match="^via_permutation_test calls scipy.stats.*permutation_test.*write it"):
        check_sign_flip_p(via_permutation_test)


# ------------------------------------------------------------------ the exact sign-flip test


def test_the_checks_bus_train_values_are_those_of_the_committed_ablation():
    from pspnet_edu.checks.ablate import PPM10_BUS_TRAIN
    from pspnet_edu.experiments.plots import PAIR_IDS

    path = Path(__file__).parents[1] / "results" / "lottery" / "ablate_ppm_10seeds_heads10x.json"
    results = json.loads(path.read_text())
    bus, train = PAIR_IDS[0]
    for name, values in PPM10_BUS_TRAIN.items():
        runs = sorted(results["settings"][name]["runs"], key=lambda run: run["seed"])
        assert [run["seed"] for run in runs] == list(range(10))
        assert values == tuple((run["iou"][bus] + run["iou"][train]) / 2 for run in runs), name


def right_sign_flip_p(a, b):
    d = [x - y for x, y in zip(a, b)]
    observed = sum(d) / len(d)
    means = [sum(s * x for s, x in zip(signs, d)) / len(d) for signs in itertools.product((1, -1), repeat=len(d))]
    return sum(m >= observed - 1e-9 for m in means) / len(means)


def test_sign_flip_check_passes_right_answers(capsys):
    from pspnet_edu.checks.ablate import check_sign_flip_p

    def without_zeros(a, b):  # leaves the zero differences out, and returns 1 when nothing is left
        d = [x - y for x, y in zip(a, b) if x != y]
        return right_sign_flip_p(d, [0.0] * len(d)) if d else 1.0

    check_sign_flip_p(right_sign_flip_p)
    check_sign_flip_p(without_zeros)
    assert capsys.readouterr().out == (
        "✓ right_sign_flip_p matches pspnet_edu.experiments.stats.sign_flip_p on 14 cases\n"
        "✓ without_zeros matches pspnet_edu.experiments.stats.sign_flip_p on 14 cases\n")


def _flipped_means(a, b):
    d = [x - y for x, y in zip(a, b)]
    return sum(d) / len(d), [sum(s * x for s, x in zip(signs, d)) / len(d)
                             for signs in itertools.product((1, -1), repeat=len(d))]


def strictly_greater(a, b):
    observed, means = _flipped_means(a, b)
    return sum(m > observed + 1e-9 for m in means) / len(means)


def no_tolerance(a, b):
    observed, means = _flipped_means(a, b)
    return sum(m >= observed for m in means) / len(means)


def observed_from_the_means(a, b):  # mean(a) - mean(b): rounds differently from the flipped means
    _, means = _flipped_means(a, b)
    return sum(m >= sum(a) / len(a) - sum(b) / len(b) for m in means) / len(means)


def two_sided(a, b):
    observed, means = _flipped_means(a, b)
    return sum(abs(m) >= abs(observed) - 1e-9 for m in means) / len(means)


def count_only(a, b):
    observed, means = _flipped_means(a, b)
    return sum(m >= observed - 1e-9 for m in means)


def others_only(a, b):  # leaves the observed assignment out of both counts
    observed, means = _flipped_means(a, b)
    return (sum(m >= observed - 1e-9 for m in means) - 1) / (len(means) - 1)


def sign_test(a, b):
    n, positive = len(a), sum(x > y for x, y in zip(a, b))
    return sum(math.comb(n, k) for k in range(positive, n + 1)) / 2 ** n


def drops_zeros_and_divides_by_nothing(a, b):
    d = [x - y for x, y in zip(a, b) if x != y]
    return right_sign_flip_p(d, [0.0] * len(d))


def monte_carlo(a, b):
    rng = np.random.default_rng(0)
    d = np.asarray(a) - np.asarray(b)
    means = (rng.choice([-1, 1], size=(200, len(d))) * d).mean(axis=1)
    return float(np.mean(means >= d.mean() - 1e-9))


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (strictly_greater, "p = 0 is impossible"),
        (no_tolerance, "a tie lost to float rounding"),
        (observed_from_the_means, "a tie lost to float rounding"),
        (two_sided, "that is the two-sided p"),
        (lambda a, b: right_sign_flip_p(b, a), "'b better than a'"),
        (count_only, "not their number"),
        (others_only, "p = 0 is impossible"),
        (sign_test, "that is the sign test"),
        (drops_zeros_and_divides_by_nothing, "raised ZeroDivisionError"),
        (monte_carlo, "the observed assignment included"),
    ],
)
def test_sign_flip_check_names_the_plausible_mistakes(wrong, hint):
    from pspnet_edu.checks.ablate import check_sign_flip_p

    with pytest.raises(AssertionError) as info:
        check_sign_flip_p(wrong)
    assert hint in str(info.value), str(info.value)


def test_sign_flip_check_says_why_a_strict_count_fails_where_ties_are():
    from pspnet_edu.checks.ablate import _SIGN_FLIP_CASES, check_sign_flip_p

    def strict_unless_all_gain(a, b):  # right where no assignment ties the observed one, strict elsewhere
        d = [x - y for x, y in zip(a, b)]
        return right_sign_flip_p(a, b) if all(x > 0 for x in d) else strictly_greater(a, b)

    with pytest.raises(AssertionError) as info:
        check_sign_flip_p(strict_unless_all_gain)
    assert "a mean equal to the observed one is 'at least as large'" in str(info.value), str(info.value)
    assert any("ties" in (case.hint or "") for case in _SIGN_FLIP_CASES)


# ------------------------------------------------------------------ the power of Fisher's test


def _chance(runs, k, rate):
    return math.comb(runs, k) * rate ** k * (1 - rate) ** (runs - k)


def power_by(rejects, chance=_chance, swap=False):
    """my_fisher_power that counts the outcomes ``rejects(a, b, runs, alpha)`` accepts."""

    def my_fisher_power(a_rate, b_rate, runs, alpha=0.05):
        if swap:
            a_rate, b_rate = b_rate, a_rate
        return sum(chance(runs, a, a_rate) * chance(runs, b, b_rate)
                   for a in range(runs + 1) for b in range(runs + 1) if rejects(a, b, runs, alpha))

    return my_fisher_power


def _fisher(a, b, runs):
    from pspnet_edu.experiments.stats import fisher_exact

    return fisher_exact(a, runs, b, runs)


right_fisher_power = power_by(lambda a, b, runs, alpha: _fisher(a, b, runs) <= alpha * (1 + 1e-9))


def test_fisher_power_check_passes_a_right_answer_and_its_cases_tell_the_slips_apart(capsys):
    from pspnet_edu.checks.ablate import _FISHER_POWER_CASES, check_fisher_power

    check_fisher_power(right_fisher_power)
    assert capsys.readouterr().out == ("✓ my_fisher_power matches pspnet_edu.experiments.stats.fisher_power on 8 "
                                       "cases\n")
    powers = [right_fisher_power(*case.args) for case in _FISHER_POWER_CASES]
    assert powers[1] == 1.0 and powers[5] == 0 and powers[4] <= 0.05  # p exactly alpha; no outcome; the size


def _simulated_power(a_rate, b_rate, runs, alpha=0.05):
    rng = np.random.default_rng(0)
    hits = rng.binomial(runs, [a_rate, b_rate], size=(2000, 2))
    return float(np.mean([_fisher(int(a), int(b), runs) <= alpha for a, b in hits]))


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (power_by(lambda a, b, runs, alpha: _fisher(a, b, runs) < alpha), "reject when p <= alpha"),
        (power_by(lambda a, b, runs, alpha: a > b), "simply shows MORE hits"),
        (power_by(lambda a, b, runs, alpha: fisher_two_sided(a, runs, b, runs) <= alpha), "two-sided Fisher p"),
        (power_by(lambda a, b, runs, alpha: _fisher(a, b, runs) <= alpha * (1 + 1e-9),
                  chance=lambda runs, k, rate: rate ** k * (1 - rate) ** (runs - k)), "without C(n, k)"),
        (power_by(lambda a, b, runs, alpha: _fisher(a, b, runs) <= alpha * (1 + 1e-9), swap=True),
         "a and b are swapped"),
        (lambda *args: right_fisher_power(*args) / (args[2] + 1) ** 2, "summed, not averaged"),
        (_simulated_power, "a simulation?"),
    ],
)
def test_fisher_power_check_names_the_plausible_mistakes(wrong, hint):
    from pspnet_edu.checks.ablate import check_fisher_power

    with pytest.raises(AssertionError) as info:
        check_fisher_power(wrong)
    assert hint in str(info.value), str(info.value)
