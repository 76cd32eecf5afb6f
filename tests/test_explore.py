"""Tests of pspnet_edu/explore.py: each picture shows what the package computes."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F

from pspnet_edu.dilation import gridding_pattern
from pspnet_edu.explore import draw_gridding, draw_pool_windows, draw_receptive_field, sliders
from pspnet_edu.receptive_field import receptive_field


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_receptive_field_rows_highlight_the_package_sizes(ax):
    fields = draw_receptive_field(ax, [3, 3, 5], [1, 2, 1], [1, 1, 2])
    assert [f.size for f in fields] == [f.size for f in receptive_field([(3, 1, 0), (3, 2, 0), (5, 1, 0, 2)])]
    orange = matplotlib.colors.to_rgba("tab:orange")
    lit = {}
    for patch in ax.patches:
        row = round(patch.get_y())
        lit[row] = lit.get(row, 0) + (patch.get_facecolor() == orange)
    assert [lit[r] for r in range(4)] == [1] + [f.size for f in fields]


def test_gridding_mask_is_the_package_pattern(ax):
    mask = draw_gridding(ax, [2, 2])
    assert (torch.from_numpy(mask) == (gridding_pattern([2, 2]) > 0)).all()
    assert (~mask).sum() == 81 - 25
    assert draw_gridding(ax, [1, 2, 5]).all()


def test_pool_windows_match_torch_adaptive_pooling(ax):
    size, bins = 7, 3
    windows = draw_pool_windows(ax, size, bins)
    x = torch.arange(size * size, dtype=torch.float64).reshape(1, 1, size, size)
    expected = F.adaptive_avg_pool2d(x, bins)[0, 0]
    for i, (t, b) in enumerate(windows):
        for j, (l, r) in enumerate(windows):
            assert x[0, 0, t:b, l:r].mean() == expected[i, j]
    assert len(ax.patches) == bins * bins


@pytest.mark.parametrize("call, message", [
    (lambda ax: draw_receptive_field(ax, [3, 3], [1], [1, 1]), "same length"),
    (lambda ax: draw_receptive_field(ax, [0], [1], [1]), "kernel of layer 1"),
    (lambda ax: draw_gridding(ax, []), "dilations is empty"),
    (lambda ax: draw_gridding(ax, [2, 0]), "dilation of layer 2"),
    (lambda ax: draw_pool_windows(ax, 4, 6), "must not exceed"),
    (lambda ax: draw_pool_windows(ax, 4, 0), "bins must be"),
])
def test_bad_slider_values_give_a_clear_error(ax, call, message):
    with pytest.raises(ValueError, match=message):
        call(ax)


def test_sliders_wire_the_draw_function():
    import ipywidgets as widgets

    seen = []
    ui = sliders(lambda ax, size, bins: seen.append((size, bins)),
                 size=widgets.IntSlider(6, 1, 12), bins=widgets.IntSlider(2, 1, 6))
    ui.children[1].value = 3
    plt.close("all")
    assert seen[-1] == (6, 3)
    assert all(not c.continuous_update for c in ui.children[:2])


def _control(ui, name):
    return next(c for c in ui.children if getattr(c, "description", "") == name)


def test_receptive_field_sliders_draw_the_package_field():
    from pspnet_edu.explore import receptive_field_sliders

    ui = receptive_field_sliders(layers=3)
    _control(ui, "kernel 2").value = 5
    _control(ui, "stride 1").value = 2
    _control(ui, "dilation 3").value = 3
    plt.close("all")
    expected = receptive_field([(3, 2, 0, 1), (5, 1, 0, 1), (3, 1, 0, 3)])
    assert [f.size for f in ui.result] == [f.size for f in expected] == [3, 11, 23]


def test_gridding_sliders_draw_the_package_pattern():
    from pspnet_edu.explore import gridding_sliders

    ui = gridding_sliders(layers=3)
    _control(ui, "rate 1").value = 1
    _control(ui, "rate 3").value = 5
    plt.close("all")
    assert (torch.from_numpy(ui.result) == (gridding_pattern([1, 2, 5]) > 0)).all()


def test_pool_window_sliders_draw_torch_windows():
    from pspnet_edu.explore import pool_window_sliders
    from pspnet_edu.ppm import adaptive_pool_windows

    ui = pool_window_sliders()
    _control(ui, "size").value = 7
    _control(ui, "bins").value = 4
    plt.close("all")
    assert ui.result == adaptive_pool_windows(7, 4) == [(0, 2), (1, 4), (3, 6), (5, 7)]
