"""The exact window of input pixels that one output unit depends on, clipped to the image.

What: the recurrences of :mod:`~pspnet_edu.receptive_field.recurrence` give the field of unit
``i`` as the interval ``[i*j - p, i*j - p + r - 1]``, padding included. A segmentation network
predicts every pixel, so the units at the border of the map matter as much as the centre one,
and their field runs into the padding, which contributes nothing. :func:`input_region` answers
the exact question: which input pixels can change unit (row, col)? It walks back from the unit
through the layers, keeping at every layer only the positions that exist (0 .. n-1), so that it
also drops

- positions that fall in the padding of an intermediate layer, not only of the first;
- the last pixels of a map that no window of the next layer reaches (a 2x2 pooling of a map with
  an odd side never reads its last row: the output size is floor((n + 2 pad - d(k-1) - 1) / s) + 1);
- pixels between the taps of a dilated or strided kernel, which matters at the border: a 3x3
  kernel with dilation 2 and padding 1 puts its taps of unit 0 on pixels -1, 1, 3, so pixel 0
  does not reach it.

The window is the bounding box of those pixels; with all-positive weights (nothing cancels) it is
the bounding box of the support of d unit / d input, which the tests and lesson 01's check confirm
with autograd. A max-pooling has the same window as an average pooling of the same geometry:
changing any pixel of its window can change its output.

Taught in notebooks/01_receptive_fields.ipynb (the exercise ``my_input_region``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pspnet_edu.receptive_field.effective import Box
from pspnet_edu.receptive_field.recurrence import Layer, LayerLike, _as_layer, check_int


def _map_sides(layers: Sequence[Layer], input_size: int) -> list[int]:
    """The side of every map along one axis, the input's first: torch's floor rule (``ceil_mode=False``).

    >>> _map_sides([Layer(3, 2, 0), Layer(3, 1, 1)], 8)  # so the 3x3/2 valid conv never reads pixel 7
    [8, 3, 3]
    """
    sides = [input_size]
    for index, layer in enumerate(layers):
        side = (sides[-1] + 2 * layer.padding - layer.effective_kernel_size) // layer.stride + 1
        if side < 1:
            raise ValueError(
                f"layer {index} (kernel {layer.kernel_size}, stride {layer.stride}, padding {layer.padding}, "
                f"dilation {layer.dilation}) gets a map of {sides[-1]} pixels, fewer than its kernel spans "
                f"({layer.effective_kernel_size}) with its padding: it has no output; use a larger input."
            )
        sides.append(side)
    return sides


def input_pixels(layers: Sequence[LayerLike], unit: int, input_size: int) -> list[int]:
    """The input pixels, in order, that output unit ``unit`` of ``layers`` depends on, along one axis.

    ``layers`` holds ``Layer`` objects or ``(kernel, stride, padding[, dilation])`` tuples,
    ``input_size`` is the input's side. Empty when the unit sees nothing but padding.

    >>> input_pixels([(3, 1, 1)], 0, 8)  # unit 0 of a 3x3 conv: pixel -1 is padding
    [0, 1]
    >>> input_pixels([(1, 2, 0), (3, 1, 1)], 2, 8)  # a 1x1 stride-2 layer skips odd pixels
    [2, 4, 6]
    >>> input_pixels([(3, 1, 1, 2)], 0, 8)  # taps -1, 1, 3: pixel 0 lies between two taps
    [1, 3]
    """
    parsed = [_as_layer(layer, index) for index, layer in enumerate(layers)]
    sides = _map_sides(parsed, check_int("input_size", input_size, 1, "input_pixels"))
    check_int("unit", unit, 0, "input_pixels")
    if unit >= sides[-1]:
        raise ValueError(f"input_pixels: unit {unit} does not exist, the output has {sides[-1]} units "
                         f"(0 to {sides[-1] - 1}) for an input of {input_size} pixels.")
    reached = {unit}
    for layer, size in zip(reversed(parsed), reversed(sides[:-1])):
        taps = [t * layer.dilation - layer.padding for t in range(layer.kernel_size)]
        reached = {q * layer.stride + tap for q in reached for tap in taps}
        reached = {i for i in reached if 0 <= i < size}  # padding contributes nothing
    return sorted(reached)


def input_region(layers: Sequence[LayerLike], unit: tuple[int, int], input_size: tuple[int, int]) -> Box | None:
    """The window of input pixels that output unit ``unit = (row, col)`` depends on, clipped to the image.

    ``layers`` act alike on both axes (square kernels, as ``(kernel, stride, padding[, dilation])``
    tuples or ``Layer`` objects); ``input_size`` is (H, W). Returns a :class:`Box` (all four sides
    included), the bounding box of :func:`input_pixels` along each axis, or None when the unit sees
    nothing but padding.

    VGG-16's pool5 on a 224 x 224 image: its units have a 212-pixel field, jump 32 and padding 90,
    so the corner unit keeps only 122 of its 212 rows inside the image:

    >>> vgg = ([(3, 1, 1)] * 2 + [(2, 2, 0)]) * 2 + ([(3, 1, 1)] * 3 + [(2, 2, 0)]) * 3
    >>> input_region(vgg, (0, 0), (224, 224))
    Box(top=0, left=0, bottom=121, right=121)
    >>> input_region(vgg, (3, 6), (224, 224))
    Box(top=6, left=102, bottom=217, right=223)
    """
    (row, col), (height, width) = unit, input_size
    rows, cols = input_pixels(layers, row, height), input_pixels(layers, col, width)
    if not rows or not cols:
        return None
    return Box(rows[0], cols[0], rows[-1], cols[-1])
