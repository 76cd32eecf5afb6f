"""The experiments' figures draw the committed results files' numbers (results/*.json)."""

import json
from pathlib import Path

import numpy as np
import pytest

from pspnet_edu.data import CLASS_NAMES, THIN_CLASSES
from pspnet_edu.experiments.plots import PAIR_IDS, plot_alpha, plot_ppm
from pspnet_edu.experiments.stats import compare_settings, context_miou, mean_and_spread

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture(scope="module")
def alpha_results():
    return json.loads((RESULTS / "ablate_alpha.json").read_text())


def test_the_alpha_figure_draws_the_files_levels_and_paired_gains(alpha_results):
    figure = plot_alpha(alpha_results)
    levels, gains, _ = figure.axes
    names = list(alpha_results["settings"])
    thin = [CLASS_NAMES.index(name) for name in THIN_CLASSES]
    every_class = range(len(CLASS_NAMES))
    expected_levels = [[mean_and_spread([r["miou"] for r in s["runs"]])[0] for s in alpha_results["settings"].values()],
                       [mean_and_spread([context_miou(r["iou"], thin) for r in s["runs"]])[0]
                        for s in alpha_results["settings"].values()]]
    expected_gains = [[compare_settings(alpha_results, name, names[0], classes).mean for name in names[1:]]
                      for classes in (every_class, thin)]
    assert np.allclose([list(c.lines[0].get_ydata()) for c in levels.containers], expected_levels)
    assert np.allclose([list(c.lines[0].get_ydata()) for c in gains.containers], expected_gains)
    low, high = zip(*[(c.low, c.high) for c in (compare_settings(alpha_results, n, names[0], thin) for n in names[1:])])
    bars = gains.containers[1].lines[2][0].get_segments()  # the thin classes' interval bars
    assert np.allclose([segment[:, 1].min() for segment in bars], low)
    assert np.allclose([segment[:, 1].max() for segment in bars], high)


def test_the_ppm_figure_draws_the_files_gains():
    results = json.loads((RESULTS / "ablate_ppm.json").read_text())
    figure = plot_ppm(results)
    names = [n for n in results["settings"] if n != "none"]
    bars = [patch.get_height() for patch in figure.axes[0].patches]
    assert np.allclose(bars, [compare_settings(results, name, "none", pair).mean for pair in PAIR_IDS for name in names])


def test_a_one_seed_sweep_still_gets_its_figure(alpha_results):
    """`ablate alpha --num-seeds 1` is allowed: its figure has no intervals and no paired gains, and no error."""
    one_seed = {**alpha_results, "settings": {name: {**s, "runs": s["runs"][:1]}
                                              for name, s in alpha_results["settings"].items()}}
    levels, gains, _ = plot_alpha(one_seed).axes
    assert [list(c.lines[0].get_ydata()) for c in levels.containers][0] == [s["runs"][0]["miou"]
                                                                          for s in one_seed["settings"].values()]
    assert not gains.containers and "two seeds" in gains.texts[0].get_text()


def test_the_curves_figure_draws_the_files_means():
    """Each thick line of the learning-curves figure is the per-step mean over the file's seeds."""
    from pspnet_edu.experiments.plots import plot_curves

    path = RESULTS / "curves.json"

    results = json.loads(path.read_text())
    figure = plot_curves(results)
    pairs = list(next(iter(results["curves"].values()))[0]["pairs"])
    for ax, pair in zip(figure.axes, pairs):
        means = [list(line.get_ydata()) for line in ax.lines if line.get_linewidth() > 2]
        expected = [list(np.mean([r["pairs"][pair] for r in runs], axis=0)) for runs in results["curves"].values()]
        assert np.allclose(means, expected)
    for ax, key in zip(figure.axes[-2:], ("radius", "sky")):
        means = [list(line.get_ydata()) for line in ax.lines if line.get_linewidth() > 2]
        expected = [list(np.mean([r["erf"][key] for r in runs], axis=0)) for runs in results["curves"].values()]
        assert np.allclose(means, expected)


def test_a_ppm_sweep_without_none_draws_each_pairs_iou():
    """`ablate ppm --variants B1236-control` has no baseline to take gains over: the figure draws the IoU itself."""
    results = json.loads((RESULTS / "ablate_ppm.json").read_text())
    alone = {**results, "settings": {"B1236-control": results["settings"]["B1236-control"]}}
    figure = plot_ppm(alone)
    runs = alone["settings"]["B1236-control"]["runs"]
    bars = [patch.get_height() for patch in figure.axes[0].patches]
    assert np.allclose(bars, [np.mean([context_miou(r["iou"], pair) for r in runs]) for pair in PAIR_IDS])
    assert "not a gain" in figure.axes[0].get_ylabel()
