"""Tests for pspnet_edu/checks/data.py (the self-check of notebook 06)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.datasets import Cityscapes
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from pspnet_edu.checks.data import (
    _AUGMENT_CASES,
    _LABEL_CASES,
    _alignment_problem,
    _augment,
    _painted,
    check_joint_augment,
    check_label_ids_to_train_ids,
)
from pspnet_edu.data.transforms import IMAGENET_MEAN, TrainTransforms


# torchvision's own train_id column: 255 for untrained classes but -1 for the licence plate.
TORCHVISION_TRAIN_ID = {c.id: c.train_id for c in Cityscapes.classes}


def table_from_torchvision(fill: int = 255) -> np.ndarray:
    table = np.full(256, fill, dtype=np.int64)
    for c in Cityscapes.classes:
        if c.id >= 0 and 0 <= c.train_id <= 18:
            table[c.id] = c.train_id
    return table


def right(label_ids):
    return table_from_torchvision()[np.asarray(label_ids).astype(np.int64)]


def test_cases_against_a_per_pixel_loop():
    # The reference, via the check's cases, against an independent loop over torchvision's table.
    by_id = {c.id: c.train_id for c in Cityscapes.classes}
    for case in _LABEL_CASES:
        ids = case.args[0]
        loop = np.array([by_id[int(i)] if 0 <= by_id.get(int(i), 255) <= 18 else 255 for i in ids.reshape(-1)],
                        dtype=np.int64).reshape(ids.shape)
        assert np.array_equal(loop, right(ids))


def test_right_answer_passes(capsys):
    def my_label_ids_to_train_ids(label_ids):
        return right(label_ids)

    check_label_ids_to_train_ids(my_label_ids_to_train_ids)
    assert capsys.readouterr().out == ("✓ my_label_ids_to_train_ids matches "
                                       "pspnet_edu.data.labels.label_ids_to_train_ids on 7 cases\n")


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda ids: table_from_torchvision(fill=0)[np.asarray(ids).astype(np.int64)], "must become 255"),
        (lambda ids: np.vectorize(TORCHVISION_TRAIN_ID.get, otypes=[np.int64])(ids), "train_id -1"),  # a dict lookup
        (lambda ids: np.asarray(ids).copy(), "unchanged"),
        (lambda ids: right(ids).reshape(-1), "same shape"),
    ],
)
def test_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_label_ids_to_train_ids(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value)


# ------------------------------------------------------------------ joint augmentation



def augment(image, mask, crop_size, scale=(0.5, 2.0), *, kernels="torch", mask_mode="nearest", mask_fill=255,
            image_fill=IMAGENET_MEAN, flips="one", order="scale", sizing="round", antialias=True, padding="both",
            window="right", rng="torch", extra_draw=False):
    """A learner's augmentation, written independently of the check's ``_augment``, with optional slips."""
    _, height, width = image.shape
    if order == "flip first":
        flip = bool(torch.rand(1) < 0.5)
    if rng == "python":  # Python's generator: torch.manual_seed does not reach it
        factor = random.uniform(*scale)
    else:
        factor = float(scale[0] + (scale[1] - scale[0]) * torch.rand(1))  # torch.rand rescaled: the same number
    image, mask = resize(image, mask, factor, kernels, mask_mode, sizing, antialias)
    if flips == "two":
        image = image.flip(-1) if torch.rand(1) < 0.5 else image
        mask = mask.flip(-1) if torch.rand(1) < 0.5 else mask
    elif order != "crop first":
        if order != "flip first":
            flip = bool(torch.rand(1) >= 0.5) if flips == "when >= 0.5" else bool(torch.rand(1) < 0.5)
        image, mask = mirror(image, mask, flip, flips)
    size = tuple(mask.shape)
    pads = [max(0, c - s) for c, s in zip(crop_size, size)] if padding != "none" else [0, 0]
    if padding == "bottom right":
        borders = [0, 0, pads[1], pads[0]]  # left, top, right, bottom
    elif padding == "centred":
        borders = [pads[1] // 2, pads[0] // 2, pads[1] - pads[1] // 2, pads[0] - pads[0] // 2]
    else:
        borders = [pads[1], pads[0], pads[1], pads[0]]
    fill = torch.tensor(image_fill).view(3, 1, 1)
    image = TF.pad(image - fill, borders, fill=0.0) + fill  # the fill colour around it
    mask = TF.pad(mask[None], borders, fill=mask_fill)[0]
    height, width = mask.shape
    top = offset(height, crop_size[0], pads[0], window)
    left = offset(width, crop_size[1], pads[1], window)
    image, mask = image[:, top:top + crop_size[0], left:left + crop_size[1]], mask[top:top + crop_size[0],
                                                                                   left:left + crop_size[1]]
    if order == "crop first":
        image, mask = mirror(image, mask, bool(torch.rand(1) < 0.5), flips)
    if extra_draw:
        torch.rand(1)  # e.g. a rotation or blur decision the recipe does not make here
    return image, mask


def resize(image, mask, factor, kernels, mask_mode, sizing, antialias):
    if sizing == "scale_factor":
        return (F.interpolate(image[None], scale_factor=factor, mode="bilinear", antialias=antialias)[0],
                F.interpolate(mask[None, None].float(), scale_factor=factor, mode="nearest")[0, 0].to(mask.dtype))
    to_int = int if sizing == "int" else round
    size = [max(1, to_int(image.shape[-2] * factor)), max(1, to_int(image.shape[-1] * factor))]
    if kernels == "torchvision":
        return TF.resize(image, size, antialias=antialias), TF.resize(mask[None], size, InterpolationMode.NEAREST)[0]
    image = F.interpolate(image[None], size=size, mode="bilinear", antialias=antialias)[0]
    if mask_mode in ("nearest", "nearest-exact"):
        return image, F.interpolate(mask[None, None].float(), size=size, mode=mask_mode)[0, 0].to(mask.dtype)
    labels = F.interpolate(mask[None, None].float(), size=size, mode="bilinear")[0, 0]
    if mask_mode == "bilinear, rounded":
        return image, labels.round().to(mask.dtype)
    if mask_mode == "bilinear, truncated":
        return image, labels.to(mask.dtype)
    return image, labels  # "bilinear": a float mask


def mirror(image, mask, flip, flips):
    if not flip:
        return image, mask
    if flips == "image only":
        return image.flip(-1), mask
    if flips == "dim 1":  # the image's dim 1 is its height, the mask's its width
        return image.flip(1), mask.flip(1)
    if flips == "vertical":
        return image.flip(-2), mask.flip(-2)
    return image.flip(-1), mask.flip(-1)


def offset(padded, crop, pad, window):
    if window == "always draw":
        return int(torch.randint(0, padded - crop + 1, (1,)))
    if padded <= crop:
        return 0
    if window == "one short":
        return int(torch.randint(0, padded - crop, (1,)))
    drawn = int(torch.randint(0, padded - crop + 1, (1,)))
    return pad - drawn if window == "image position" and pad > 0 else drawn


def test_the_checks_own_augmentation_is_train_transforms_on_random_inputs():
    generator = torch.Generator().manual_seed(0)
    for seed in range(60):
        size = tuple(int(v) for v in torch.randint(8, 40, (2,), generator=generator))
        crop = tuple(int(v) for v in torch.randint(6, 48, (2,), generator=generator))
        image, mask = torch.rand(3, *size, generator=generator), torch.randint(0, 19, size, generator=generator)
        torch.manual_seed(seed)
        want = TrainTransforms(crop, (0.5, 2.0), normalize=False)(image, mask)
        state = torch.get_rng_state()
        torch.manual_seed(seed)
        got = _augment(image, mask, crop, (0.5, 2.0))
        torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-6)
        assert torch.equal(got[1], want[1])
        assert torch.equal(torch.get_rng_state(), state)  # the same random numbers used, no more


def test_cases_cover_both_flips_padding_the_exact_fit_and_rounding():
    flips, padded, rounded_up = set(), 0, 0
    for _, size, crop, scale, _, seed, _ in _AUGMENT_CASES:
        torch.manual_seed(seed)
        factor = float(torch.empty(1).uniform_(*scale))
        flips.add(bool(torch.rand(1) < 0.5))
        padded += any(c > s * scale[0] for c, s in zip(crop, size))
        rounded_up += any(round(s * factor) != int(s * factor) for s in size)
    assert flips == {True, False} and padded >= 3 and rounded_up >= 3
    for _, size, crop, scale, void, seed, dtype in _AUGMENT_CASES:  # the painted images: the reference stays aligned
        image, mask = _painted(seed, size, void, dtype)
        torch.manual_seed(seed)
        assert _alignment_problem(*TrainTransforms(crop, scale, normalize=False)(image, mask)) is None


@pytest.mark.parametrize("kernels", ["torch", "torchvision"])
def test_right_augmentation_passes_and_leaves_the_global_rng_alone(capsys, kernels):
    def my_joint_augment(image, mask, crop_size, scale=(0.5, 2.0)):
        return augment(image, mask, crop_size, scale, kernels=kernels)

    torch.manual_seed(123)
    before = torch.get_rng_state()
    check_joint_augment(my_joint_augment)
    assert torch.equal(torch.get_rng_state(), before)
    assert capsys.readouterr().out == ("✓ my_joint_augment matches pspnet_edu.data.transforms.TrainTransforms "
                                       "on 9 cases\n")


MISTAKES = {  # the slip: (its keyword arguments of augment, a phrase its message must hold)
    "bilinear mask, rounded": ({"mask_mode": "bilinear, rounded"}, "NEAREST neighbour"),
    "bilinear mask, truncated": ({"mask_mode": "bilinear, truncated"}, "invents a third"),
    "bilinear mask, left float": ({"mask_mode": "bilinear"}, "keep its dtype"),
    "nearest-exact mask": ({"mask_mode": "nearest-exact"}, "legacy 'nearest'"),
    "mask padded with 0": ({"mask_fill": 0}, "pad the mask with 255"),
    "image padded with 0": ({"image_fill": (0.0, 0.0, 0.0)}, "not the mean colour"),
    "no padding": ({"padding": "none"}, "pad it (the image with the mean colour, the mask with 255)"),
    "padded at the bottom/right only": ({"padding": "bottom right"}, "BOTH sides"),
    "centred in the crop": ({"padding": "centred"}, "the WHOLE shortfall"),
    "offset range one short": ({"window": "one short"}, "0 to P - c INCLUSIVE"),
    "offset places the image": ({"window": "image position"}, "top-left corner of the crop WINDOW"),
    "offset drawn at the exact fit": ({"window": "always draw"}, "LONGER than the crop"),
    "two flip draws": ({"flips": "two"}, "the SAME flip"),
    "only the image flipped": ({"flips": "image only"}, "the SAME flip"),
    "flip(1) on both": ({"flips": "dim 1"}, "the last dimension of the (3, H, W) image"),
    "vertical flip": ({"flips": "vertical"}, "the training flip is left-right"),
    "flip when >= 0.5": ({"flips": "when >= 0.5"}, "below 0.5"),
    "flip drawn first": ({"order": "flip first"}, "the scale factor is the FIRST draw"),
    "crop drawn before the flip": ({"order": "crop first"}, "flip first, then pad and crop"),
    "size truncated": ({"sizing": "int"}, "rounded to the NEAREST integer"),
    "F.interpolate(scale_factor=)": ({"sizing": "scale_factor"}, "resized by a scale factor, not to a size"),
    "no antialias": ({"antialias": False}, "WITH antialias"),
    "Python's random": ({"rng": "python"}, "not from Python's random"),
    "one draw too many": ({"extra_draw": True}, "gave the right crop, but your function took a different amount"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_augmentation_mistakes_are_named(mistake):
    slips, hint = MISTAKES[mistake]
    random.seed(0)  # the slip with Python's generator: its numbers, too, are then the same on every run

    def my_joint_augment(image, mask, crop_size, scale=(0.5, 2.0)):
        return augment(image, mask, crop_size, scale, **slips)

    with pytest.raises(AssertionError) as info:
        check_joint_augment(my_joint_augment)
    assert hint in str(info.value), str(info.value)


@pytest.mark.parametrize(("slip", "hint"), [("left first", "top first"), ("always draw", "LONGER than the crop"),
                                           ("centred padding", "the WHOLE shortfall")])
def test_the_checks_own_slips_are_named(slip, hint):
    def my_joint_augment(image, mask, crop_size, scale=(0.5, 2.0)):
        return _augment(image, mask, crop_size, scale, slip=slip)

    with pytest.raises(AssertionError) as info:
        check_joint_augment(my_joint_augment)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value), str(info.value)


def test_an_unknown_slip_with_the_wrong_draws_gets_the_contract():
    def my_joint_augment(image, mask, crop_size, scale=(0.5, 2.0)):
        torch.rand(1)  # a wasted draw before the scale
        return augment(image, mask, crop_size, scale)

    with pytest.raises(AssertionError) as info:
        check_joint_augment(my_joint_augment)
    message = str(info.value)
    assert "took a different amount of random numbers" in message and "The contract, from torch's global" in message


def test_independent_flips_are_caught_by_the_alignment_invariant_on_some_case():
    failures = []
    for _, size, crop, scale, void, seed, dtype in _AUGMENT_CASES:
        image, mask = _painted(seed, size, void, dtype)
        torch.manual_seed(seed)
        failures.append(_alignment_problem(*_augment(image, mask, crop, scale, slip="independent flips")))
    assert any(f and "SAME flip" in f for f in failures)


def test_augmentation_stub_and_shortcut_are_refused():
    def my_joint_augment(image, mask, crop_size, scale=(0.5, 2.0)):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        check_joint_augment(my_joint_augment)

    def my_shortcut(image, mask, crop_size, scale=(0.5, 2.0)):
        return TrainTransforms(crop_size, scale, normalize=False)(image, mask)

    with pytest.raises(AssertionError, match="write it yourself"):
        check_joint_augment(my_shortcut)


def test_a_mask_returned_as_int64_is_caught_on_the_uint8_case():
    def my_joint_augment(image, mask, crop_size, scale=(0.5, 2.0)):
        image, mask = augment(image, mask, crop_size, scale)
        return image, mask.long()

    assert any(dtype == torch.uint8 for *_, dtype in _AUGMENT_CASES)
    with pytest.raises(AssertionError, match=r"(?s)uint8.*keep its dtype \(torch.uint8\)"):
        check_joint_augment(my_joint_augment)
