"""Tests for pspnet_edu/checks/receptive_field.py (the self-checks of notebook 01)."""

from __future__ import annotations

import copy
from typing import NamedTuple

import pytest
import torch
from torch import nn

from pspnet_edu.checks.receptive_field import (
    VGG16_FEATURES,
    _BLOCKS,
    _erf_cases,
    check_erf_gradient,
    check_receptive_field,
    check_residual_field,
    residual_field,
)
from pspnet_edu.receptive_field import effective_receptive_field, receptive_field, receptive_field_of


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
