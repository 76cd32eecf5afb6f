"""Tests for pspnet_edu/checks/data.py (the self-check of notebook 06)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.datasets import Cityscapes
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


def augment(image, mask, crop_size, scale=(0.5, 2.0), mask_mode="nearest", mask_fill=255, flips="one", order="scale"):
    """A learner's augmentation, written independently of the check's ``_augment``, with optional slips."""
    _, height, width = image.shape
    if order == "flip first":
        flip = bool(torch.rand(1) < 0.5)
    factor = float(torch.empty(1).uniform_(*scale))
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True)[0]
    if mask_mode == "nearest":
        mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest")[0, 0].long()
    else:  # the bilinear-mask slip, rounded back to integers
        mask = F.interpolate(mask[None, None].float(), size=size, mode="bilinear")[0, 0].round().long()
    if flips == "two":
        image = image.flip(-1) if torch.rand(1) < 0.5 else image
        mask = mask.flip(-1) if torch.rand(1) < 0.5 else mask
    else:
        if order != "flip first":
            flip = bool(torch.rand(1) < 0.5)
        if flip:
            image, mask = image.flip(-1), mask.flip(-1)
    pad_h, pad_w = max(0, crop_size[0] - size[0]), max(0, crop_size[1] - size[1])
    fill = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    image = TF.pad(image - fill, [pad_w, pad_h, pad_w, pad_h], fill=0.0) + fill  # the mean colour around it
    mask = TF.pad(mask[None], [pad_w, pad_h, pad_w, pad_h], fill=mask_fill)[0]
    height, width = mask.shape
    top = int(torch.randint(0, height - crop_size[0] + 1, size=())) if height > crop_size[0] else 0
    left = int(torch.randint(0, width - crop_size[1] + 1, size=())) if width > crop_size[1] else 0
    return (image[:, top:top + crop_size[0], left:left + crop_size[1]],
            mask[top:top + crop_size[0], left:left + crop_size[1]])


def test_the_checks_own_augmentation_is_train_transforms_on_random_inputs():
    generator = torch.Generator().manual_seed(0)
    for seed in range(60):
        size = tuple(int(v) for v in torch.randint(8, 40, (2,), generator=generator))
        crop = tuple(int(v) for v in torch.randint(6, 48, (2,), generator=generator))
        image, mask = torch.rand(3, *size, generator=generator), torch.randint(0, 19, size, generator=generator)
        torch.manual_seed(seed)
        want = TrainTransforms(crop, (0.5, 2.0), normalize=False)(image, mask)
        torch.manual_seed(seed)
        got = _augment(image, mask, crop, (0.5, 2.0))
        torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-6)
        assert torch.equal(got[1], want[1])


def test_cases_cover_both_flips_padding_and_the_exact_fit():
    flips, padded = set(), 0
    for _, size, crop, scale, _, seed in _AUGMENT_CASES:
        torch.manual_seed(seed)
        torch.empty(1).uniform_(*scale)
        flips.add(bool(torch.rand(1) < 0.5))
        padded += any(c > s * scale[0] for c, s in zip(crop, size))
    assert flips == {True, False} and padded >= 3
    for _, size, crop, scale, void, seed in _AUGMENT_CASES:  # the painted images: the reference stays aligned
        image, mask = _painted(seed, size, void)
        torch.manual_seed(seed)
        assert _alignment_problem(*TrainTransforms(crop, scale, normalize=False)(image, mask)) is None


def test_right_augmentation_passes_and_leaves_the_global_rng_alone(capsys):
    def my_joint_augment(image, mask, crop_size, scale=(0.5, 2.0)):
        return augment(image, mask, crop_size, scale)

    torch.manual_seed(123)
    before = torch.get_rng_state()
    check_joint_augment(my_joint_augment)
    assert torch.equal(torch.get_rng_state(), before)
    assert capsys.readouterr().out == ("✓ my_joint_augment matches pspnet_edu.data.transforms.TrainTransforms "
                                       "on 8 cases\n")


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda i, m, c, s: augment(i, m, c, s, mask_mode="bilinear"), "NEAREST neighbour"),
        (lambda i, m, c, s: augment(i, m, c, s, flips="two"), "flip"),
        (lambda i, m, c, s: augment(i, m, c, s, mask_fill=0), "pad the mask with 255"),
        (lambda i, m, c, s: augment(i, m, c, s, order="flip first"), "the scale factor is the FIRST draw"),
        (lambda i, m, c, s: _augment(i, m, c, s, slip="left first"), "top first"),
        (lambda i, m, c, s: _augment(i, m, c, s, slip="always draw"), "LONGER than the crop"),
        (lambda i, m, c, s: _augment(i, m, c, s, slip="pad to the crop only"), "BOTH sides"),
        (lambda i, m, c, s: _augment(i, m, c, s, slip="crop before flip"), "flip first, then pad and crop"),
        (lambda i, m, c, s: (augment(i, m, c, s)[0], augment(i, m, c, s)[1].float()), "keep its dtype"),
    ],
)
def test_augmentation_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_joint_augment(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value), str(info.value)


def test_independent_flips_are_caught_by_the_alignment_invariant_on_some_case():
    failures = []
    for _, size, crop, scale, void, seed in _AUGMENT_CASES:
        image, mask = _painted(seed, size, void)
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
