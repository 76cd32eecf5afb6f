"""Tests for pspnet_edu/checks/receptive_field.py (the self-checks of notebook 01)."""

from __future__ import annotations

import copy
from typing import NamedTuple

import pytest
import torch
import torchvision
from torch import nn

from pspnet_edu.checks.receptive_field import (
    ALEXNET_FEATURES,
    VGG16_FEATURES,
    _BLOCKS,
    _REGIONS,
    _erf_cases,
    check_erf_gradient,
    check_input_region,
    check_receptive_field,
    check_residual_field,
    gradient_window,
    residual_field,
)
from pspnet_edu.receptive_field import (
    Box,
    effective_receptive_field,
    input_region,
    receptive_field,
    receptive_field_of,
)


def right_stack(layers):
    r, j, p, out = 1, 1, 0, []
    for k, s, pad, d in layers:
        r, j, p = r + d * (k - 1) * j, j * s, p + pad * j
        out.append((r, j, p))
    return out


def test_reference_passes(capsys):
    def my_receptive_field(layers):
        return right_stack(layers)

    check_receptive_field(my_receptive_field)
    assert capsys.readouterr().out == (
        "✓ my_receptive_field matches pspnet_edu.receptive_field.receptive_field on 9 cases\n"
    )


def test_objects_with_size_stride_padding_are_accepted_but_the_package_function_is_not(capsys):
    class Field(NamedTuple):
        size: int
        stride: int
        padding: int

    def my_receptive_field(layers):
        return [Field(*field) for field in right_stack(layers)]

    check_receptive_field(my_receptive_field)
    assert capsys.readouterr().out.startswith("✓ my_receptive_field")
    with pytest.raises(AssertionError, match="write your own version"):
        check_receptive_field(receptive_field)


def test_alexnet_layer_list_is_torchvisions():
    from pspnet_edu.receptive_field.recurrence import conv_layers, pool_layers

    with torch.device("meta"):
        features = torchvision.models.alexnet().features
    layers = [conv_layers(m)[0] if isinstance(m, nn.Conv2d) else pool_layers(m)[0]
              for m in features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    assert [(x.kernel_size, x.stride, x.padding, x.dilation) for x in layers] == list(ALEXNET_FEATURES)


def test_vgg16_layer_list_gives_the_distill_value():
    assert VGG16_FEATURES.count((3, 1, 1, 1)) == 13 and VGG16_FEATURES.count((2, 2, 0, 1)) == 5
    assert right_stack(VGG16_FEATURES)[-1] == (212, 32, 90)  # Araujo et al. 2019, VGG-16 pool5


@pytest.mark.parametrize(
    ("slip", "hint"),
    [
        ("no_jump", "multiplied by the jump j_{l-1}"),
        ("new_jump", "BEFORE this layer"),
        ("no_dilation", "spans d*(k-1)+1 pixels"),
        ("padding_no_jump", "p_l = p_{l-1} + pad_l*j_{l-1}"),
    ],
)
def test_plausible_wrong_answers_get_a_named_hint(slip, hint):
    def my_receptive_field(layers):
        r, j, p, out = 1, 1, 0, []
        for k, s, pad, d in layers:
            span = k if slip == "no_dilation" else d * (k - 1) + 1
            grow = {"no_jump": 1, "new_jump": j * s}.get(slip, j)
            r, p, j = r + (span - 1) * grow, p + pad * (1 if slip == "padding_no_jump" else j), j * s
            out.append((r, j, p))
        return out

    with pytest.raises(AssertionError) as info:
        check_receptive_field(my_receptive_field)
    message = str(info.value)
    assert message.startswith("my_receptive_field([") and "gave a wrong result" in message
    assert "expected:" in message and "got:" in message and "difference: at [" in message
    assert hint in message


def test_an_unnamed_mistake_gets_a_nudge_not_the_recurrences():
    def my_receptive_field(layers):
        return [(r + 1, j, p) for r, j, p in right_stack(layers)]

    with pytest.raises(AssertionError, match="place its kernel over its input map") as info:
        check_receptive_field(my_receptive_field)
    assert "r_l" not in str(info.value) and "*j" not in str(info.value)


def test_only_the_last_field_is_a_wrong_shape():
    def my_receptive_field(layers):
        return right_stack(layers)[-1]

    with pytest.raises(AssertionError, match="one"):
        check_receptive_field(my_receptive_field)


def block(main, shortcut):
    """A real module with two paths, built from the same layer tuples."""

    def convs(layers):
        return nn.Sequential(*[nn.Conv2d(1, 1, k, s, p, d) for k, s, p, d in layers]) if layers else nn.Identity()

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.main, self.shortcut = convs(main), convs(shortcut)

        def forward(self, x):
            return self.main(x) + self.shortcut(x)

    return Block()


@pytest.mark.parametrize("before, main, shortcut", [b[:3] for b in _BLOCKS])
def test_residual_reference_equals_the_graph_analysis(before, main, shortcut):
    # Start every block from the identity field, and compare with receptive_field_of on a real module.
    r, j, p = residual_field((1, 1, 0), main, shortcut)
    net = nn.Sequential(block(main, shortcut))
    rf = receptive_field_of(net, (1, 1, 64, 64), "0")
    assert (rf.size[0], rf.stride[0], rf.padding[0]) == (r, j, p)


def test_residual_reference_refuses_misaligned_paths():
    with pytest.raises(ValueError, match="misaligned"):
        residual_field((1, 1, 0), [(3, 1, 0, 1)], [(1, 1, 0, 1)])


def test_residual_check(capsys):
    def my_residual_field(before, main, shortcut):
        fields = []
        for path in (main, shortcut):
            r, j, p = before
            for k, s, pad, d in path:
                r, j, p = r + d * (k - 1) * j, j * s, p + pad * j
            fields.append((r, j, p))
        return max(fields)

    check_residual_field(my_residual_field)
    assert capsys.readouterr().out == "✓ my_residual_field matches the larger field of the two aligned paths on 6 cases\n"


def test_residual_check_names_the_sequential_mistake():
    def my_residual_field(before, main, shortcut):
        r, j, p = before
        for k, s, pad, d in [*main, *shortcut]:
            r, j, p = r + d * (k - 1) * j, j * s, p + pad * j
        return r, j, p

    with pytest.raises(AssertionError, match="you chained the shortcut after the main path"):
        check_residual_field(my_residual_field)


# ------------------------------------------------------------------ the gradient map of the effective field


def gradient_map(features, x, unit=None, channel=None, reduce="abs-then-sum"):
    x = x.clone().requires_grad_(True)
    y = features(x)
    row, col = unit or ((y.shape[-2] - 1) // 2, (y.shape[-1] - 1) // 2)
    (y[:, :, row, col] if channel is None else y[:, channel, row, col]).sum().backward()
    if reduce == "signed":
        return x.grad.sum(dim=(0, 1))
    if reduce == "sum-then-abs":
        return x.grad.sum(dim=(0, 1)).abs()
    if reduce == "none":
        return x.grad
    return x.grad.abs().sum(dim=(0, 1))


def test_erf_check_passes_a_right_answer_and_leaves_the_global_rng_alone(capsys):
    def my_erf_gradient(features, x):
        return gradient_map(features, x)

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    check_erf_gradient(my_erf_gradient)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert capsys.readouterr().out == (
        "✓ my_erf_gradient matches pspnet_edu.receptive_field.effective_receptive_field on 7 cases\n")


def test_erf_cases_agree_with_an_independent_float64_gradient():
    for case in _erf_cases():
        features, x = case.args
        expected = effective_receptive_field(features, tuple(x.shape[1:]), list(features.named_children())[-1][0],
                                             inputs=x).gradient
        twin = copy.deepcopy(features).double()
        torch.testing.assert_close(gradient_map(twin, x.double()), expected)
        assert expected.shape == x.shape[-2:]


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda f, x: gradient_map(f, x, reduce="signed"), "take the absolute value of the gradient"),
        (lambda f, x: gradient_map(f, x, reduce="sum-then-abs"), "BEFORE summing"),
        (lambda f, x: gradient_map(f, x, reduce="none"), "that is x.grad itself"),
        (lambda f, x: gradient_map(f, x, channel=0), "not only the first"),
        (lambda f, x: gradient_map(f, x, unit=tuple(n // 2 for n in f(x).shape[-2:])), "(n - 1) // 2, not n // 2"),
        (lambda f, x: gradient_map(f, x) / x.shape[0], "do not average"),
    ],
)
def test_erf_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match="gave a wrong result") as info:
        check_erf_gradient(wrong)
    assert hint in str(info.value) and "0x" not in str(info.value)


def test_erf_check_refuses_the_package_function():
    def my_erf_gradient(features, x):
        return effective_receptive_field(features, tuple(x.shape[1:]), "0", inputs=x).gradient

    name = "pspnet_edu.receptive_field.effective.effective_receptive_field"
    with pytest.raises(AssertionError, match=f"my_erf_gradient calls {name}, the function"):
        check_erf_gradient(my_erf_gradient)


# ------------------------------------------------------------------ the exact input window of one unit


def region_by_walking_back(layers, out_row, out_col, in_h, in_w):
    """A right answer: the set of positions each layer reaches, from the unit back to the image."""

    def axis(unit, size):
        sides = [size]
        for k, s, pad, d in layers:
            sides.append((sides[-1] + 2 * pad - d * (k - 1) - 1) // s + 1)
        reached = {unit}
        for (k, s, pad, d), side in zip(reversed(layers), reversed(sides[:-1])):
            reached = {q * s - pad + t * d for q in reached for t in range(k) if 0 <= q * s - pad + t * d < side}
        return min(reached), max(reached)

    (top, bottom), (left, right) = axis(out_row, in_h), axis(out_col, in_w)
    return top, left, bottom, right


def region_by_recurrences(layers, out_row, out_col, in_h, in_w, slip=None):
    """The usual approach: r, j, p from the recurrences, the span of the unit, clipped at the end; with a slip."""

    def axis(unit, size):
        r, j, p = 1, 1, 0
        for k, s, pad, d in layers:
            grow = (k - 1) if slip == "no_dilation" else d * (k - 1)
            r += grow * (j * s if slip == "new_jump" else j)
            p += pad if slip == "padding_no_jump" else pad * j
            j *= s
        if slip == "no_padding":
            p = 0
        if slip == "centred":
            p = (r - 1) // 2
        first = unit * j - p
        last = first + r if slip == "far_end" else first + r - 1
        return (first, last) if slip == "no_clip" else (max(first, 0), min(last, size - 1))

    (top, bottom), (left, right) = axis(out_row, in_h), axis(out_col, in_w)
    return top, left, bottom, right


def region_by_intervals(layers, out_row, out_col, in_h, in_w):
    """Walks back with one interval per layer, clipped at every layer: blind to the holes between taps."""

    def axis(unit, size):
        sides = [size]
        for k, s, pad, d in layers:
            sides.append((sides[-1] + 2 * pad - d * (k - 1) - 1) // s + 1)
        first, last = unit, unit
        for (k, s, pad, d), side in zip(reversed(layers), reversed(sides[:-1])):
            first, last = max(first * s - pad, 0), min(last * s - pad + d * (k - 1), side - 1)
        return first, last

    (top, bottom), (left, right) = axis(out_row, in_h), axis(out_col, in_w)
    return top, left, bottom, right


REGION_VERDICT = ("✓ my_input_region matches pspnet_edu.receptive_field.input_region and autograd's gradient "
                  "support on 14 cases\n")


def test_region_check_passes_a_right_answer_and_a_box(capsys):
    def my_input_region(layers, out_row, out_col, in_h, in_w):
        return region_by_walking_back(layers, out_row, out_col, in_h, in_w)

    check_input_region(my_input_region)
    assert capsys.readouterr().out == REGION_VERDICT

    def my_input_region(layers, out_row, out_col, in_h, in_w):  # a Box, in a list-of-lists layer format
        return Box(*region_by_walking_back([tuple(layer) for layer in layers], out_row, out_col, in_h, in_w))

    check_input_region(my_input_region)
    assert capsys.readouterr().out == REGION_VERDICT


@pytest.mark.parametrize("layers, out_row, out_col, in_h, in_w", [r[:5] for r in _REGIONS])
def test_region_cases_agree_with_the_package_autograd_and_walking_back(layers, out_row, out_col, in_h, in_w):
    box = input_region(layers, (out_row, out_col), (in_h, in_w))
    expected = (box.top, box.left, box.bottom, box.right)
    assert gradient_window(layers, out_row, out_col, in_h, in_w) == expected
    assert region_by_walking_back(list(layers), out_row, out_col, in_h, in_w) == expected


def test_every_region_case_shows_something_the_plain_recurrences_do_not_all_get():
    # The cases are not all alike: the clipped recurrence span is wrong on some (unread pixels, holes).
    wrong = [r for r in _REGIONS if region_by_recurrences(list(r[0]), *r[1:5]) != region_by_walking_back(list(r[0]), *r[1:5])]
    assert len(wrong) >= 3


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda *a: region_by_recurrences(*a, slip="no_padding"), "the padding shifts every field"),
        (lambda *a: region_by_recurrences(*a, slip="padding_no_jump"), "one padding pixel stands for 2 input pixels"),
        (lambda *a: region_by_recurrences(*a, slip="centred"), "centred on it only when every layer pads"),
        (lambda *a: region_by_recurrences(*a, slip="no_dilation"), "spans d*(k-1)+1 pixels"),
        (lambda *a: region_by_recurrences(*a, slip="new_jump"), "with the jump before it"),
        (lambda *a: region_by_recurrences(*a, slip="far_end"), "end at pixel a + r - 1"),
        (lambda *a: region_by_recurrences(*a, slip="no_clip"), "clip the window to the image"),
        (region_by_recurrences, "row 8 (your bottom) does not reach the unit: clipping the final window"),
        (region_by_intervals, "row 0 (your top) lies inside the span of the kernels but between two"),
        (lambda layers, row, col, h, w: region_by_walking_back(layers, col, row, h, w), "from out_row"),
        (lambda layers, row, col, h, w: region_by_walking_back(layers, row, col, w, h), "in_h is the number of rows"),
        (lambda *a: (lambda t, l, b, r: (t, b, l, r))(*region_by_walking_back(*a)), "(top, left, bottom, right)"),
        (lambda *a: (lambda t, l, b, r: (t, l, b + 1, r + 1))(*region_by_walking_back(*a)), "not one past them"),
    ],
)
def test_region_mistakes_are_named(wrong, hint):
    def my_input_region(layers, out_row, out_col, in_h, in_w):
        return wrong(layers, out_row, out_col, in_h, in_w)

    with pytest.raises(AssertionError) as info:
        check_input_region(my_input_region)
    message = str(info.value)
    assert message.startswith("my_input_region([") and "gave a wrong result" in message
    assert hint in message, message


def test_region_check_gives_the_contract_for_a_wrong_shape_and_refuses_the_package():
    def my_input_region(layers, out_row, out_col, in_h, in_w):
        return region_by_walking_back(layers, out_row, out_col, in_h, in_w)[:2]

    with pytest.raises(AssertionError, match=r"return \(top, left, bottom, right\), all four included"):
        check_input_region(my_input_region)

    def my_input_region(layers, out_row, out_col, in_h, in_w):
        box = input_region(layers, (out_row, out_col), (in_h, in_w))
        return box.top, box.left, box.bottom, box.right

    with pytest.raises(AssertionError, match="my_input_region calls pspnet_edu.receptive_field.region.input_region"):
        check_input_region(my_input_region)


def test_region_reference_refuses_a_package_that_disagrees_with_autograd(monkeypatch):
    import pspnet_edu.checks.receptive_field as module

    monkeypatch.setattr(module, "input_region", lambda layers, unit, size: Box(0, 0, 0, 0))
    with pytest.raises(RuntimeError, match="a bug in the package"):
        module._reference_region([(3, 1, 1, 1)], 2, 2, 5, 5)
