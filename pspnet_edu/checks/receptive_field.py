"""Self-checks for notebooks/01_receptive_fields.ipynb (Araujo et al. 2019; Luo et al. 2016).

The lesson leads to the remark of Zhao et al. 2017, Sec. 3.2: the empirical receptive field
of a deep network is much smaller than its theoretical one.

- :func:`check_receptive_field`: the learner's ``my_receptive_field(layers)`` for a
  single-path stack, against :func:`pspnet_edu.receptive_field.receptive_field`;
- :func:`check_input_region`: the learner's ``my_input_region(layers, out_row, out_col, in_h, in_w)``,
  the window of input pixels that one unit depends on, clipped to the image, against both
  :func:`pspnet_edu.receptive_field.input_region` and the support of autograd's gradient
  (:func:`gradient_window`), with the usual slips named (padding, dilation, jump, clipping, the
  pixels no layer reads, the holes between dilated taps);
- :func:`check_residual_field`: the learner's ``my_residual_field(before, main, shortcut)``,
  the field after a residual addition, against the largest field over the two aligned paths
  (the rule :func:`pspnet_edu.receptive_field.receptive_field_of` applies to a real graph);
- :func:`check_erf_gradient`: the learner's ``my_erf_gradient(features, x)``, the map of
  |d centre unit / d input| that the effective receptive field is measured from, against
  ``effective_receptive_field(...).gradient``.

The first three take layers as ``(kernel, stride, padding, dilation)`` tuples, fields as
``(size, jump, padding)`` tuples and windows as ``(top, left, bottom, right)`` tuples, so that a
learner needs nothing but integers. While the
learner's function runs, the package's code it re-derives is hidden (``*_HIDDEN`` below;
:func:`pspnet_edu.checks._core.hidden`): for the stack, ``receptive_field``, the graph analysis
``receptive_field_of`` and the ``ReceptiveField`` class (its ``.then`` *is* the recurrence); for
the window, ``input_region``, ``input_pixels``, ``gradient_window``, ``effective_receptive_field``
and the same three (``.span`` gives the unclipped field; the learner's own ``my_receptive_field``
may be reused); for
the residual block, the reference and ``receptive_field_of`` (which applies that very rule),
while ``ReceptiveField`` stays available: the exercise is how the two paths combine; for the
gradient map, ``effective_receptive_field``; autograd is the brick of that exercise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pspnet_edu.checks._core import Case, check_cases, learner_name, refuse_reference, require_callable
from pspnet_edu.receptive_field import (
    Layer,
    ReceptiveField,
    effective_receptive_field,
    input_pixels,
    input_region,
    receptive_field,
    receptive_field_of,
)

LayerTuple = tuple[int, int, int, int]
FieldTuple = tuple[int, int, int]

UPDATE_HINT = (
    "start from r = 1, j = 1, p = 0 (the input) and, for each layer, place its kernel over its input map: its "
    "taps are d positions apart, the positions of that map are j input pixels apart, and the first tap of unit 0 "
    "sits pad positions before position 0; the field of a unit runs from the first pixel its first tap sees to "
    "the last pixel its last tap sees."
)

# VGG-16's 13 convolutions and 5 max-pools up to pool5 (Simonyan & Zisserman 2015); its field
# is 212 pixels with jump 32 and padding 90 (Araujo et al. 2019, table of common networks).
VGG16_FEATURES: tuple[LayerTuple, ...] = tuple(
    layer
    for convs in (2, 2, 3, 3, 3)
    for layer in [(3, 1, 1, 1)] * convs + [(2, 2, 0, 1)]
)

_STACKS: tuple[tuple[tuple[LayerTuple, ...], str | None], ...] = (
    (((3, 1, 1, 1),), "one 3x3 convolution sees 3 pixels."),
    (((3, 1, 1, 1),) * 3, "three 3x3 convolutions see 7 pixels."),
    (((7, 2, 3, 1), (3, 2, 1, 1)), "a ResNet stem: 7x7/2 conv then 3x3/2 max-pool."),
    (((3, 2, 1, 1), (3, 1, 1, 1), (3, 1, 1, 1)), "layers after a stride-2 layer grow the field twice as fast."),
    (((3, 1, 2, 2),), "a 3x3 kernel with dilation 2 spans 5 pixels."),
    (((3, 2, 1, 1), (3, 1, 2, 2), (3, 1, 4, 4)), "dilated layers after a stride."),
    (((1, 2, 0, 1), (1, 2, 0, 1)), "1x1 layers with stride 2 (a shortcut) do not grow the field, but multiply the jump."),
    (((5, 1, 0, 1), (2, 2, 0, 1), (5, 1, 0, 1)), "unpadded layers: the padding stays 0."),
    (VGG16_FEATURES, "VGG-16 up to pool5: Araujo et al. list r=212, j=32, p=90."),
)


RECEPTIVE_FIELD_HIDDEN = (receptive_field, receptive_field_of, ReceptiveField)  # hidden while the learner runs


def _as_tuples(result: Any) -> Any:
    """A learner's list of fields as (size, jump, padding) tuples (objects with those attributes accepted)."""
    if isinstance(result, Sequence) and not isinstance(result, str):
        return [
            (f.size, f.stride, f.padding) if all(hasattr(f, a) for a in ("size", "stride", "padding")) else f
            for f in result
        ]
    return result


def _reference_stack(layers: Sequence[LayerTuple]) -> list[FieldTuple]:
    return [(f.size, f.stride, f.padding) for f in receptive_field(layers)]


def _slip_columns(layers: Sequence[LayerTuple]) -> dict[str, list[int]]:
    """The size (or padding) column each usual slip produces, to name the slip in the hint."""
    columns: dict[str, list[int]] = {"no_jump": [], "new_jump": [], "no_dilation": [], "padding_no_jump": []}
    r = {slip: 1 for slip in columns}
    j, p = 1, 0
    for k, s, pad, d in layers:
        span = d * (k - 1) + 1
        r["no_jump"] += span - 1  # forgets to multiply by the jump
        r["new_jump"] += (span - 1) * j * s  # multiplies by the jump after this layer
        r["no_dilation"] += (k - 1) * j
        p += pad  # padding not multiplied by the jump
        j *= s
        for slip in ("no_jump", "new_jump", "no_dilation"):
            columns[slip].append(r[slip])
        columns["padding_no_jump"].append(p)
    return columns


_SLIP_HINTS = {
    "no_jump": "each layer's growth d*(k-1) must be multiplied by the jump j_{l-1} of the layers before it: "
    "after a stride-2 layer, neighbouring units are 2 input pixels apart.",
    "new_jump": "multiply the growth by the jump BEFORE this layer (j_{l-1}), not after it: "
    "a layer's own stride does not widen its own window.",
    "no_dilation": "a kernel of size k with dilation d spans d*(k-1)+1 pixels, not k.",
    "padding_no_jump": "the padding of a layer counts in units of the jump before it: p_l = p_{l-1} + pad_l*j_{l-1}.",
}


def _diagnose(case: Case, expected: Any, got: Any) -> str:
    try:
        sizes, paddings = [g[0] for g in got], [g[2] for g in got]
    except (TypeError, IndexError, KeyError):
        return "return a list with one (size, jump, padding) tuple per layer. " + UPDATE_HINT
    columns = _slip_columns(case.args[0])
    for slip in ("no_jump", "new_jump", "no_dilation"):
        if sizes == columns[slip] != [e[0] for e in expected]:
            return _SLIP_HINTS[slip]
    if paddings == columns["padding_no_jump"] != [e[2] for e in expected]:
        return _SLIP_HINTS["padding_no_jump"]
    return UPDATE_HINT


def check_receptive_field(my_receptive_field: Callable[[Sequence[LayerTuple]], Sequence[FieldTuple]]) -> None:
    """Check ``my_receptive_field(layers)``: one ``(size, jump, padding)`` tuple per layer.

    ``layers`` is a list of ``(kernel, stride, padding, dilation)`` tuples. Prints one line or
    raises AssertionError naming the stack, the expected and received fields and the slip.

    >>> def my_receptive_field(layers):
    ...     size, jump, padding, fields = 1, 1, 0, []
    ...     for kernel, stride, pad, dilation in layers:
    ...         size, padding, jump = size + dilation * (kernel - 1) * jump, padding + pad * jump, jump * stride
    ...         fields.append((size, jump, padding))
    ...     return fields
    >>> check_receptive_field(my_receptive_field)
    ✓ my_receptive_field matches pspnet_edu.receptive_field.receptive_field on 9 cases
    """
    require_callable(my_receptive_field)
    refuse_reference(my_receptive_field, RECEPTIVE_FIELD_HIDDEN)  # the wrapper below would hide it
    cases = [Case((list(layers),), hint=hint) for layers, hint in _STACKS]

    def learner(layers: Sequence[LayerTuple]) -> Any:
        return _as_tuples(my_receptive_field(layers))

    learner.__name__ = learner_name(my_receptive_field)
    check_cases(learner, _reference_stack, cases, hide=RECEPTIVE_FIELD_HIDDEN, hint=_diagnose,
                against="pspnet_edu.receptive_field.receptive_field")


# ------------------------------------------------------------------ the exact input window of one unit

RegionTuple = tuple[int, int, int, int]

REGION_CONTRACT = (
    "return (top, left, bottom, right), all four included: the smallest window of the in_h x in_w image that "
    "holds every input pixel that can change output unit (out_row, out_col); padding, at any layer, contributes "
    "nothing."
)

# AlexNet's features as torchvision builds them (conv 11/4 pad 2, three 3x3/2 max-pools).
ALEXNET_FEATURES: tuple[LayerTuple, ...] = (
    (11, 4, 2, 1), (3, 2, 0, 1), (5, 1, 2, 1), (3, 2, 0, 1), (3, 1, 1, 1), (3, 1, 1, 1), (3, 1, 1, 1), (3, 2, 0, 1),
)

_REGIONS: tuple[tuple[tuple[LayerTuple, ...], int, int, int, int, str], ...] = (
    (((3, 1, 1, 1),), 4, 9, 12, 16, "one 3x3 convolution with padding 1, a unit inside the map."),
    (((3, 1, 1, 1),), 11, 0, 12, 16, "the bottom-left unit: its field runs into the padding on two sides."),
    (((3, 1, 0, 1),), 0, 5, 10, 12, "no padding: the output is smaller than the input."),
    (((7, 2, 3, 1), (3, 2, 1, 1)), 3, 11, 32, 48, "the ResNet stem (7x7/2 conv, 3x3/2 max-pool), a unit on the right edge."),
    (((3, 2, 1, 1), (3, 1, 1, 1), (3, 1, 1, 1)), 5, 2, 20, 20, "two 3x3 convolutions after a stride-2 layer."),
    (((3, 1, 2, 2),), 6, 7, 14, 14, "a 3x3 kernel with dilation 2."),
    (((3, 1, 2, 1),), 0, 1, 8, 8, "padding 2 on a 3x3 kernel: the output is larger than the input."),
    (((3, 2, 1, 1), (3, 1, 2, 2), (3, 1, 4, 4)), 0, 11, 24, 24, "dilated layers after a stride, the top-right unit."),
    (((2, 2, 0, 1), (3, 1, 1, 1)), 3, 5, 9, 13, "a 2x2 pooling of a map with odd sides, the bottom-right unit."),
    (((1, 2, 0, 1), (3, 1, 1, 1)), 5, 7, 11, 16, "a 1x1 stride-2 layer (a ResNet shortcut) reads every other pixel."),
    (((3, 1, 1, 2),), 0, 7, 10, 10, "dilation 2 with padding 1 (the padding that keeps the size is 2)."),
    (((3, 2, 0, 1), (3, 1, 0, 2), (2, 2, 0, 1)), 1, 0, 21, 18, "unpadded layers: a stride, a dilation, a pooling."),
    (ALEXNET_FEATURES, 5, 5, 227, 227, "AlexNet's features on a 227 x 227 image, the bottom-right unit of pool5."),
    (VGG16_FEATURES, 0, 6, 224, 224, "VGG-16 up to pool5 on 224 x 224, the top-right unit."),
)


def gradient_window(layers: Sequence[LayerTuple], out_row: int, out_col: int, in_h: int,
                    in_w: int) -> RegionTuple | None:
    """The empirical answer: the bounding box of the non-zero d y[out_row, out_col] / d x, by autograd.

    Every layer is a ``conv2d`` with one channel and weights drawn in [0.5, 1.5] (float64, fixed
    seed, the global RNG untouched): all paths are positive, so no gradient cancels. An average
    pooling is such a convolution with equal weights, and a max-pooling depends on its whole
    window, so pooling layers are convolutions here too. None when the gradient is all zero.

    >>> gradient_window([(3, 1, 1, 1)], 0, 0, 5, 5)
    (0, 0, 1, 1)
    """
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(0)
    x = torch.rand((1, 1, in_h, in_w), generator=generator, dtype=torch.float64).requires_grad_(True)
    y = x
    for kernel, stride, pad, dilation in layers:
        weight = 0.5 + torch.rand((1, 1, kernel, kernel), generator=generator, dtype=torch.float64)
        y = F.conv2d(y, weight, stride=stride, padding=pad, dilation=dilation)
    y[0, 0, out_row, out_col].backward()
    reached = x.grad[0, 0] != 0  # (in_h, in_w)
    if not reached.any():
        return None
    rows, cols = reached.any(dim=1).nonzero().flatten(), reached.any(dim=0).nonzero().flatten()
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])


def _reference_region(layers: Sequence[LayerTuple], out_row: int, out_col: int, in_h: int,
                      in_w: int) -> RegionTuple | None:
    """``input_region`` as a tuple, after making sure that autograd's gradient agrees with it."""
    box = input_region(layers, (out_row, out_col), (in_h, in_w))
    region = None if box is None else (box.top, box.left, box.bottom, box.right)
    support = gradient_window(layers, out_row, out_col, in_h, in_w)
    if region != support:
        raise RuntimeError(f"input_region gives {region} but the gradient's support is {support} for "
                           f"{list(layers)}, unit ({out_row}, {out_col}), input {in_h}x{in_w}: a bug in the package")
    return region


REGION_HIDDEN = (input_region, input_pixels, gradient_window, receptive_field, receptive_field_of,
                 effective_receptive_field, ReceptiveField)  # hidden while the learner's code runs


def _recurrence_span(layers: Sequence[LayerTuple], unit: int, size: int, slip: str | None = None) -> tuple[int, int]:
    """One axis of the window from the recurrences (r, j, p), clipped at the end, with one usual slip."""
    r, j, p = 1, 1, 0
    for k, s, pad, d in layers:
        span = k if slip == "no_dilation" else d * (k - 1) + 1
        r += (span - 1) * (j * s if slip == "new_jump" else j)
        p += pad * (1 if slip == "padding_no_jump" else j)
        j *= s
    p = {"no_padding": 0, "centred": (r - 1) // 2}.get(slip or "", p)
    first = unit * j - p
    last = first + r - (0 if slip == "far_end" else 1)
    return (first, last) if slip == "no_clip" else (max(first, 0), min(last, size - 1))


def _interval_span(layers: Sequence[LayerTuple], unit: int, size: int) -> tuple[int, int]:
    """One axis, walking back with an interval clipped at every layer: right but for the holes between taps."""
    sides = [size]
    for k, s, pad, d in layers:
        sides.append((sides[-1] + 2 * pad - d * (k - 1) - 1) // s + 1)
    first = last = unit
    for (k, s, pad, d), side in zip(reversed(layers), reversed(sides[:-1])):
        first, last = max(first * s - pad, 0), min(last * s - pad + d * (k - 1), side - 1)
    return first, last


def _both_axes(span: Callable[[Sequence[LayerTuple], int, int], tuple[int, int]]) -> Callable[..., RegionTuple]:
    def region(layers: Sequence[LayerTuple], out_row: int, out_col: int, in_h: int, in_w: int) -> RegionTuple:
        (top, bottom), (left, right) = span(layers, out_row, in_h), span(layers, out_col, in_w)
        return top, left, bottom, right

    return region


def _exact(layers: Sequence[LayerTuple], out_row: int, out_col: int, in_h: int, in_w: int) -> RegionTuple:
    box = input_region(layers, (out_row, out_col), (in_h, in_w))
    return box.top, box.left, box.bottom, box.right


def _top_bottom_left_right(*args: Any) -> RegionTuple:
    top, left, bottom, right = _exact(*args)
    return top, bottom, left, right


def _half_open(*args: Any) -> RegionTuple:
    top, left, bottom, right = _exact(*args)
    return top, left, bottom + 1, right + 1


_REGION_SLIPS: dict[str, Callable[..., Any]] = {
    "order": _top_bottom_left_right,
    "unit_swap": lambda layers, row, col, h, w: _exact(layers, col, row, h, w),
    "size_swap": lambda layers, row, col, h, w: _exact(layers, row, col, w, h),
    "half_open": _half_open,
    **{slip: _both_axes(lambda L, u, n, slip=slip: _recurrence_span(L, u, n, slip))
       for slip in ("far_end", "no_clip", "no_padding", "padding_no_jump", "centred", "no_dilation", "new_jump")},
    "clip_at_end": _both_axes(_recurrence_span),
    "intervals": _both_axes(_interval_span),
}

ONE_PAST = ("bottom and right are included: they are the last row and column of the window, not one past them "
            "(r pixels from pixel a end at pixel a + r - 1).")

_REGION_HINTS = {
    "order": "return the four sides in the order (top, left, bottom, right).",
    "unit_swap": "the rows of the window come from out_row (and in_h), its columns from out_col (and in_w).",
    "size_swap": "rows run from 0 to in_h - 1 and columns from 0 to in_w - 1: in_h is the number of rows.",
    "half_open": ONE_PAST,
    "far_end": ONE_PAST,
    "no_clip": "clip the window to the image: padding is not image, so no side lies outside 0 .. in_h - 1 "
               "(rows) or 0 .. in_w - 1 (columns).",
    "no_padding": "the padding shifts every field: unit 0's field starts BEFORE pixel 0, by the paddings of all the "
                  "layers counted in input pixels.",
    "padding_no_jump": "a layer's padding counts in pixels of the map it pads: after a stride-2 layer, one padding "
                       "pixel stands for 2 input pixels.",
    "centred": "a unit's field is centred on it only when every layer pads d*(k-1)/2 pixels per side; these layers "
               "pad otherwise: start from the padding they really have.",
    "no_dilation": "a kernel of size k with dilation d spans d*(k-1)+1 pixels of its input, not k.",
    "new_jump": "a layer widens the field in steps of ITS input map, i.e. with the jump before it; its own stride "
                "only spaces its outputs.",
}

_SIDES = ("top", "left", "bottom", "right")


def _first_wrong_side(expected: RegionTuple, got: Sequence[int]) -> str:
    index = next(i for i in range(4) if got[i] != expected[i])
    return f"{'row' if index % 2 == 0 else 'column'} {got[index]} (your {_SIDES[index]})"


def _region_diagnose(case: Case, expected: Any, got: Any) -> str:
    if not (isinstance(got, Sequence) and len(got) == 4):
        return REGION_CONTRACT
    got = tuple(got)
    cases = _region_cases()
    earlier = cases[: [c.args for c in cases].index(case.args)]  # the cases the learner passed
    for slip, region in _REGION_SLIPS.items():
        try:  # the slip gives this answer, and would have passed the earlier cases
            slipped = region(*case.args)
            if slipped != got or slipped == expected or any(region(*c.args) != _exact(*c.args) for c in earlier):
                continue
        except (ValueError, IndexError):  # a swapped unit that does not exist
            continue
        if slip == "clip_at_end":
            return (f"{_first_wrong_side(expected, got)} does not reach the unit: clipping the final window to the "
                    "image is not enough. A layer's last window can stop before the end of its input (it has "
                    "floor((n + 2*pad - d*(k-1) - 1) / s) + 1 outputs), and what no window reads counts no more "
                    "than padding: a pixel counts only if a chain of positions that exist at every layer links it "
                    "to the unit.")
        if slip == "intervals":
            return (f"{_first_wrong_side(expected, got)} lies inside the span of the kernels but between two of "
                    "their taps (d pixels apart for dilation d), so it does not reach the unit: the window's sides "
                    "are the first and last pixels that a chain of taps reaches.")
        return _REGION_HINTS[slip]
    return REGION_CONTRACT


def _region_cases() -> list[Case]:
    return [Case((list(layers), row, col, h, w), hint=hint) for layers, row, col, h, w, hint in _REGIONS]


def _as_region(result: Any) -> Any:
    """A learner's window as a tuple (an object with top/left/bottom/right, e.g. a ``Box``, accepted)."""
    if all(hasattr(result, side) for side in _SIDES):
        return tuple(getattr(result, side) for side in _SIDES)
    return tuple(result) if isinstance(result, list) else result


def check_input_region(my_input_region: Callable[[Sequence[LayerTuple], int, int, int, int], RegionTuple]) -> None:
    """Check ``my_input_region(layers, out_row, out_col, in_h, in_w)`` -> ``(top, left, bottom, right)``, included.

    ``layers`` is a list of ``(kernel, stride, padding, dilation)`` tuples acting on both axes;
    the answer must equal both :func:`pspnet_edu.receptive_field.input_region` and the bounding box
    of the non-zero gradient of that unit with respect to the input (:func:`gradient_window`), on
    14 stacks and units: corners, paddings other than (k-1)/2, dilations, maps that a layer does not
    read to the end, AlexNet and VGG-16. Prints one line or raises AssertionError naming the slip.

    >>> def my_input_region(layers, out_row, out_col, in_h, in_w):
    ...     def axis(unit, size):
    ...         sides = [size]
    ...         for k, s, pad, d in layers:
    ...             sides.append((sides[-1] + 2 * pad - d * (k - 1) - 1) // s + 1)
    ...         reached = {unit}
    ...         for (k, s, pad, d), side in zip(layers[::-1], sides[-2::-1]):
    ...             reached = {q * s - pad + t * d for q in reached for t in range(k)} & set(range(side))
    ...         return min(reached), max(reached)
    ...     (top, bottom), (left, right) = axis(out_row, in_h), axis(out_col, in_w)
    ...     return top, left, bottom, right
    >>> check_input_region(my_input_region)
    ✓ my_input_region matches pspnet_edu.receptive_field.input_region and autograd's gradient support on 14 cases
    """
    require_callable(my_input_region)
    refuse_reference(my_input_region, REGION_HIDDEN)  # the wrapper below would hide it

    def learner(layers: Sequence[LayerTuple], out_row: int, out_col: int, in_h: int, in_w: int) -> Any:
        return _as_region(my_input_region(layers, out_row, out_col, in_h, in_w))

    learner.__name__ = learner_name(my_input_region)
    check_cases(learner, _reference_region, _region_cases(), hide=REGION_HIDDEN, hint=_region_diagnose,
                against="pspnet_edu.receptive_field.input_region and autograd's gradient support")


def residual_field(before: FieldTuple, main: Sequence[LayerTuple], shortcut: Sequence[LayerTuple]) -> FieldTuple:
    """The reference: the field after ``out = main(x) + shortcut(x)`` when ``x`` has field ``before``.

    Both paths start from ``before``; they must be aligned (same jump, same centre of unit 0)
    for their sum to have a field at all, and then the larger field contains the smaller one.

    >>> residual_field((7, 2, 3), [(3, 2, 1, 1), (3, 1, 1, 1)], [(1, 2, 0, 1)])
    (19, 4, 9)
    """
    fields = []
    for path in (main, shortcut):
        field = ReceptiveField(*before)
        for layer in path:
            field = field.then(Layer(*layer))
        fields.append(field)
    a, b = fields
    if a.stride != b.stride or a.size - 2 * a.padding != b.size - 2 * b.padding:
        raise ValueError(f"the two paths are misaligned ({a} vs {b}); give both the same stride and 'same' padding")
    largest = max(fields, key=lambda f: f.size)
    return largest.size, largest.stride, largest.padding


RESIDUAL_FIELD_HIDDEN = (residual_field, receptive_field_of)  # hidden while the learner's code runs

_BLOCKS: tuple[tuple[FieldTuple, tuple[LayerTuple, ...], tuple[LayerTuple, ...], str | None], ...] = (
    ((1, 1, 0), ((3, 1, 1, 1), (3, 1, 1, 1)), (), "an identity shortcut: the main path's field wins."),
    ((11, 4, 5), ((3, 1, 1, 1), (3, 1, 1, 1)), (), "a BasicBlock after the ResNet stem (jump 4)."),
    ((11, 4, 5), ((1, 1, 0, 1), (3, 1, 1, 1), (1, 1, 0, 1)), ((1, 1, 0, 1),), "a Bottleneck with a 1x1 projection shortcut."),
    ((35, 4, 17), ((1, 1, 0, 1), (3, 2, 1, 1), (1, 1, 0, 1)), ((1, 2, 0, 1),), "a strided Bottleneck (ResNet V1.5: stride in the 3x3)."),
    ((99, 8, 49), ((1, 1, 0, 1), (3, 1, 2, 2), (1, 1, 0, 1)), ((1, 1, 0, 1),), "a dilated Bottleneck (layer3 of PSPNet: dilation 2, stride 1)."),
    ((5, 1, 2), ((1, 1, 0, 1),), ((3, 1, 1, 1),), "here the shortcut has the larger field."),
)


def _residual_diagnose(case: Case, expected: Any, got: Any) -> str:
    before, main, shortcut = case.args
    chain = ReceptiveField(*before)
    for layer in [*main, *shortcut]:  # the naive walk: both paths as one chain
        chain = chain.then(Layer(*layer))
    if tuple(got) == (chain.size, chain.stride, chain.padding):
        return ("you chained the shortcut after the main path, as sequential-only tools do; the two paths run "
                "side by side from the same input: compute each from `before`, then keep the larger field.")
    return ("compute the field of each path from `before` with the recurrences, then the sum sees what the larger "
            "(aligned) field sees; the jump is the same on both paths.")


def check_residual_field(
    my_residual_field: Callable[[FieldTuple, Sequence[LayerTuple], Sequence[LayerTuple]], FieldTuple],
) -> None:
    """Check ``my_residual_field(before, main, shortcut)`` -> the ``(size, jump, padding)`` after the addition.

    >>> check_residual_field(residual_field)
    Traceback (most recent call last):
    AssertionError: residual_field is the package's own pspnet_edu.checks.receptive_field.residual_field: write your own version
    """
    cases = [Case((before, list(main), list(shortcut)), hint=hint) for before, main, shortcut, hint in _BLOCKS]
    check_cases(my_residual_field, residual_field, cases, hide=RESIDUAL_FIELD_HIDDEN, hint=_residual_diagnose,
                against="the larger field of the two aligned paths")


# ------------------------------------------------------------------ the gradient map of the effective field


ERF_GRADIENT_HIDDEN = (effective_receptive_field,)  # hidden while the learner's code runs

ERF_RECIPE = (
    "run y = features(x) with x.requires_grad_(True), pick the centre unit (row, col) = ((h - 1) // 2, "
    "(w - 1) // 2) of the (B, C', h, w) output, back-propagate y[:, :, row, col].sum() (every image, every "
    "channel), and return x.grad.abs().sum(dim=(0, 1)): an (H, W) map, the absolute value taken before the sum."
)


def _erf_models() -> list[tuple[Any, tuple[int, ...], str]]:
    """(features in eval mode, input shape, hint): built with a fixed seed, the global RNG untouched."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)
        norm = nn.BatchNorm2d(4)
        norm.running_mean.normal_(0, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
        models = [
            (nn.Sequential(nn.Conv2d(1, 1, 3, padding=1)), (1, 1, 9, 9),
             "one 3x3 convolution: the map is |w| around the centre pixel."),
            (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                           nn.Conv2d(4, 1, 3, padding=1)), (1, 1, 15, 15), "three 3x3 convolutions with ReLUs."),
            (nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1)),
             (1, 1, 16, 16), "a stride-2 layer: the output is 8x8, its centre unit is (3, 3)."),
            (nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1)),
             (2, 3, 12, 10), "a batch of 2 images, 3 input and 4 output channels."),
            (nn.Sequential(nn.Conv2d(2, 3, 3, padding=2, dilation=2), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1)),
             (1, 2, 13, 13), "a dilated convolution: its taps are 2 pixels apart."),
            (nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), norm, nn.ReLU(), nn.MaxPool2d(2),
                           nn.Conv2d(4, 4, 3, padding=1)), (2, 3, 17, 17), "BatchNorm (eval mode) and max-pooling."),
            (nn.Sequential(nn.Conv2d(1, 2, 5, padding=2), nn.ReLU(), nn.Conv2d(2, 2, 3)), (1, 1, 10, 15),
             "a rectangular map: the centre unit is ((h - 1) // 2, (w - 1) // 2) = (3, 6)."),
        ]
    return [(model.eval(), shape, hint) for model, shape, hint in models]


def _erf_cases() -> list[Case]:
    import torch

    generator = torch.Generator().manual_seed(1)
    return [Case((model, torch.randn(shape, generator=generator)), hint=hint)
            for model, shape, hint in _erf_models()]


def _reference_erf(features: Any, x: Any) -> Any:
    """The package's gradient map for the centre unit of the features' last layer (computed in float64)."""
    last = list(features.named_children())[-1][0]
    return effective_receptive_field(features, tuple(x.shape[1:]), last, inputs=x).gradient


def _input_gradient(features: Any, x: Any, unit: tuple[int, int] | None = None, channel: int | None = None) -> Any:
    """x.grad (B, C, H, W) for one unit of the output (default the centre), all channels or one."""
    import copy as copy_module

    features = copy_module.deepcopy(features)
    x = x.detach().clone().requires_grad_(True)
    y = features(x)  # (B, C', h, w)
    row, col = unit if unit is not None else ((y.shape[-2] - 1) // 2, (y.shape[-1] - 1) // 2)
    picked = y[:, :, row, col] if channel is None else y[:, channel, row, col]
    picked.sum().backward()
    return x.grad


def _erf_diagnose(case: Case, expected: Any, got: Any) -> str:
    import torch

    features, x = case.args
    shape = getattr(got, "shape", None)
    if shape is None:
        return "return a tensor. " + ERF_RECIPE
    if tuple(shape) != tuple(expected.shape):
        if tuple(shape) == tuple(x.shape):
            return "that is x.grad itself: sum its absolute value over the batch and the channels. " + ERF_RECIPE
        return f"return an (H, W) = {tuple(expected.shape)} map. " + ERF_RECIPE
    grad = _input_gradient(features, x)
    with torch.no_grad():
        y = features(x)
    h, w = y.shape[-2:]
    slips = {
        "take the absolute value of the gradient: signed contributions of opposite sign cancel. ": grad.sum(dim=(0, 1)),
        "take the absolute value of each image's and each channel's gradient BEFORE summing them. ":
            grad.sum(dim=(0, 1)).abs(),
        "sum over the images of the batch, do not average. ": grad.abs().mean(dim=0).sum(dim=0),
        "the centre of a side with an even number of units is (n - 1) // 2, not n // 2. ":
            _input_gradient(features, x, (h // 2, w // 2)).abs().sum(dim=(0, 1)),
        "back-propagate from every channel of the centre unit, not only the first. ":
            _input_gradient(features, x, channel=0).abs().sum(dim=(0, 1)),
    }
    for text, value in slips.items():
        value = value.to(torch.float64)
        if not torch.allclose(value, expected, rtol=1e-4, atol=1e-6) and torch.allclose(
                torch.as_tensor(got).detach().to(torch.float64), value, rtol=1e-4, atol=1e-6):
            return text + ERF_RECIPE
    return ERF_RECIPE


def check_erf_gradient(my_erf_gradient: Callable[[Any, Any], Any]) -> None:
    """Check ``my_erf_gradient(features, x)`` -> the (H, W) map |d centre unit / d x| on 7 small networks.

    ``features`` is an ``nn.Module`` in eval mode that maps ``x`` (B, C, H, W) to a (B, C', h, w)
    map; the expected answer is ``effective_receptive_field(features, ..., inputs=x).gradient``
    (float64; a float32 answer is compared within float32's precision).

    >>> def my_erf_gradient(features, x):
    ...     x = x.clone().requires_grad_(True)
    ...     y = features(x)
    ...     y[:, :, (y.shape[-2] - 1) // 2, (y.shape[-1] - 1) // 2].sum().backward()
    ...     return x.grad.abs().sum(dim=(0, 1))
    >>> check_erf_gradient(my_erf_gradient)
    ✓ my_erf_gradient matches pspnet_edu.receptive_field.effective_receptive_field on 7 cases
    """
    check_cases(my_erf_gradient, _reference_erf, _erf_cases(), hide=ERF_GRADIENT_HIDDEN, hint=_erf_diagnose,
                against="pspnet_edu.receptive_field.effective_receptive_field", rtol=1e-4, atol=1e-6)
