"""Pictures to explore with sliders: receptive fields, dilation grids, adaptive pooling windows.

Each ``draw_...(ax, ...)`` is a plain function that draws one picture on a matplotlib Axes
and returns what it highlighted, so a lesson can call it with fixed values for a static
figure and :func:`sliders` can wire the same function to ipywidgets. The arithmetic comes
from the concept's own module (receptive_field, dilation, ppm); this module only draws.
Used in notebooks/01_receptive_fields.ipynb, 02_dilated_convolutions.ipynb and
04_pyramid_pooling_module.ipynb.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from pspnet_edu.dilation import gridding_pattern
from pspnet_edu.ppm import adaptive_pool_windows
from pspnet_edu.receptive_field import Layer, ReceptiveField, receptive_field


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def draw_receptive_field(
    ax: Axes,
    kernels: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> list[ReceptiveField]:
    """Draw, row by row, the input pixels that the centre unit of each layer sees.

    Row 0 is the input; row l highlights the span of layer l's centre unit (unpadded
    convolutions, so the span is ``receptive_field(...)[l-1].span(0)`` shifted to the middle).
    Returns the package's receptive fields, one per layer.
    """
    if not (len(kernels) == len(strides) == len(dilations)) or len(kernels) == 0:
        raise ValueError(
            "kernels, strides and dilations need one value per layer and the same length, got "
            f"{len(kernels)}, {len(strides)} and {len(dilations)}."
        )
    layers = [
        Layer(_check_int(f"kernel of layer {i + 1}", k, 1), _check_int(f"stride of layer {i + 1}", s, 1),
              0, _check_int(f"dilation of layer {i + 1}", d, 1))
        for i, (k, s, d) in enumerate(zip(kernels, strides, dilations))
    ]
    fields = receptive_field(layers)
    width = fields[-1].size + 2  # one spare pixel each side
    ax.clear()
    for row in range(len(fields) + 1):
        size = 1 if row == 0 else fields[row - 1].size
        first = (width - size) // 2
        for x in range(width):
            seen = first <= x < first + size
            ax.add_patch(Rectangle((x, row), 1, 0.8, facecolor="tab:orange" if seen else "0.9",
                                   edgecolor="white"))
        if row:
            ax.text(width + 0.3, row + 0.4, f"r = {size}", va="center")
    ax.set_xlim(0, width + 3)
    ax.set_ylim(len(fields) + 1, -0.2)
    ax.set_yticks([r + 0.4 for r in range(len(fields) + 1)])
    ax.set_yticklabels(["one pixel"] + [f"layer {i}" for i in range(1, len(fields) + 1)])
    ax.set_xlabel("input pixels")
    ax.set_title("Input pixels one output unit sees, layer by layer")
    return fields


def draw_gridding(ax: Axes, dilations: Sequence[int], kernel_size: int = 3) -> np.ndarray:
    """Draw which input pixels a stack of dilated convolutions samples for one output pixel.

    Returns the boolean (S, S) mask of sampled pixels (from ``dilation.gridding_pattern``);
    the unsampled ones inside the field are the gridding holes.
    """
    if len(dilations) == 0:
        raise ValueError("dilations is empty; give one rate per layer, e.g. (1, 2, 5).")
    rates = [_check_int(f"dilation of layer {i + 1}", d, 1) for i, d in enumerate(dilations)]
    _check_int("kernel_size", kernel_size, 1)
    sampled = gridding_pattern(rates, kernel_size).numpy() > 0
    ax.clear()
    ax.imshow(sampled, cmap="Oranges", vmin=0, vmax=1.3)
    side = sampled.shape[0]
    ax.plot(side // 2, side // 2, "k.", ms=8)  # the output pixel, at the centre of its field
    ax.set_xticks(np.arange(side + 1) - 0.5)
    ax.set_yticks(np.arange(side + 1) - 0.5)
    ax.grid(color="0.75", lw=0.5)
    ax.tick_params(labelbottom=False, labelleft=False, length=0)
    holes = int((~sampled).sum())
    ax.set_title(f"rates {tuple(rates)}: {side}x{side} field\n"
                 f"{holes} pixels never sampled (pale)")
    return sampled


def draw_pool_windows(ax: Axes, size: int, bins: int) -> list[tuple[int, int]]:
    """Draw the windows adaptive pooling cuts a ``size`` x ``size`` map into ``bins`` x ``bins``.

    Windows follow ``ppm.adaptive_pool_windows`` (torch's rule); they overlap when ``bins``
    does not divide ``size``. Returns the windows of one axis as [start, end) pairs.
    """
    size = _check_int("size", size, 1)
    bins = _check_int("bins", bins, 1)
    if bins > size:
        raise ValueError(f"bins ({bins}) must not exceed the feature-map size ({size}).")
    windows = adaptive_pool_windows(size, bins)
    ax.clear()
    ax.imshow(np.zeros((size, size)), cmap="Greys", vmin=0, vmax=1,
              extent=(0, size, size, 0))
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for i, (top, bottom) in enumerate(windows):
        for j, (left, right) in enumerate(windows):
            ax.add_patch(Rectangle((left + 0.1, top + 0.1), right - left - 0.2, bottom - top - 0.2,
                                   fill=False, lw=2, edgecolor=colours[(i + j) % len(colours)]))
    ax.set_xticks(range(size + 1))
    ax.set_yticks(range(size + 1))
    ax.grid(color="0.8", lw=0.5)
    ax.tick_params(labelbottom=False, labelleft=False, length=0)
    overlap = "overlapping" if size % bins else "disjoint"
    ax.set_title(f"{size}x{size} map into {bins}x{bins} bins: {overlap} windows")
    return windows


def sliders(draw: Callable[..., Any], figsize: tuple[float, float] = (7, 4), **controls: Any) -> Any:
    """Wire ipywidgets controls to ``draw(ax, **values)``; redraws when a slider is released.

    ``controls`` are ipywidgets (e.g. ``IntSlider``) keyed by the parameter name; pass a
    callable under the key ``combine`` to turn the values into draw's arguments. The returned
    ``ipywidgets.interactive`` keeps what ``draw`` returned last in ``.result``.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    combine = controls.pop("combine", lambda **values: values)
    for control in controls.values():
        control.continuous_update = False

    def update(**values: Any) -> Any:
        fig, ax = plt.subplots(figsize=figsize)
        drawn = draw(ax, **combine(**values))
        plt.show()
        return drawn  # kept as the widget's .result (not displayed)

    return widgets.interactive(update, **controls)


def receptive_field_sliders(layers: int = 3) -> Any:
    """Kernel, stride and dilation sliders for each of ``layers`` layers -> draw_receptive_field."""
    import ipywidgets as widgets

    layers = _check_int("layers", layers, 1)
    controls = {}
    for i in range(1, layers + 1):
        controls[f"kernel{i}"] = widgets.IntSlider(3, 1, 7, description=f"kernel {i}")
        controls[f"stride{i}"] = widgets.IntSlider(1, 1, 3, description=f"stride {i}")
        controls[f"dilation{i}"] = widgets.IntSlider(1, 1, 4, description=f"dilation {i}")

    def combine(**v: int) -> dict[str, list[int]]:
        return {name: [v[f"{name[:-1]}{i}"] for i in range(1, layers + 1)]
                for name in ("kernels", "strides", "dilations")}

    return sliders(draw_receptive_field, figsize=(8, 3), combine=combine, **controls)


def gridding_sliders(layers: int = 3) -> Any:
    """One dilation-rate slider per stacked 3x3 convolution -> draw_gridding."""
    import ipywidgets as widgets

    layers = _check_int("layers", layers, 1)
    controls = {f"rate{i}": widgets.IntSlider(2, 1, 6, description=f"rate {i}")
                for i in range(1, layers + 1)}

    def combine(**v: int) -> dict[str, list[int]]:
        return {"dilations": [v[f"rate{i}"] for i in range(1, layers + 1)]}

    return sliders(draw_gridding, figsize=(5, 5), combine=combine, **controls)


def pool_window_sliders() -> Any:
    """Feature-map size and bin count sliders -> draw_pool_windows."""
    import ipywidgets as widgets

    return sliders(draw_pool_windows, figsize=(5, 5),
                   size=widgets.IntSlider(10, 1, 20, description="size"),
                   bins=widgets.IntSlider(3, 1, 6, description="bins"))
