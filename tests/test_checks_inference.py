"""Tests for pspnet_edu/checks/inference.py (the sliding-window exercise of notebook 08)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pspnet_edu.checks.inference import (
    SLIDING_CASES,
    CoordinateProbe,
    check_sliding_window,
    coordinate_images,
)
from pspnet_edu.inference import predict_probs


def starts(size, crop, stride):
    return [min(i * stride, size - crop) for i in range(math.ceil(max(size - crop, 0) / stride) + 1)]


def sliding(model, images, crop, stride, *, grid=starts, centre=True, average="probs", divide=True):
    (height, width), (crop_h, crop_w) = images.shape[-2:], crop
    pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
    top, left = (pad_h // 2, pad_w // 2) if centre else (0, 0)
    padded = F.pad(images, (left, pad_w - left, top, pad_h - top))
    total, count = 0, torch.zeros(padded.shape[-2:])
    for y in grid(padded.shape[-2], crop_h, stride[0]):
        for x in grid(padded.shape[-1], crop_w, stride[1]):
            window = padded[..., y:y + crop_h, x:x + crop_w]
            logits = model(window)["out"]
            value = logits if average == "logits" else logits.softmax(dim=1)
            h, w = window.shape[-2:]
            total = total + F.pad(value, (x, padded.shape[-1] - x - w, y, padded.shape[-2] - y - h))
            count[y:y + h, x:x + w] += 1
    result = total / count if divide else total
    if average == "logits":
        result = result.softmax(dim=1)
    return result[..., top:top + height, left:left + width]


def test_the_cases_cover_what_the_exercise_names():
    kinds = [(case.size[0] < case.crop[0] and case.size[1] < case.crop[1], case.size == case.crop) for case in SLIDING_CASES]
    assert (True, False) in kinds and (False, True) in kinds  # smaller than the crop; exact fit
    assert any(case.size[0] > case.crop[0] and case.size[1] < case.crop[1] for case in SLIDING_CASES)  # mixed
    assert any(case.network for case in SLIDING_CASES) and any(not case.network for case in SLIDING_CASES)
    assert any(len(starts(case.size[0], case.crop[0], case.stride[0])) * len(starts(case.size[1], case.crop[1], case.stride[1])) >= 10
               for case in SLIDING_CASES)  # many windows


def test_the_probe_records_the_windows_predict_probs_takes():
    probe = CoordinateProbe()
    images = coordinate_images(1, 10, 12)
    predict_probs(probe, images, mode="sliding", crop=(6, 8), stride_rate=0.5)
    rows = sorted({r[0] - 1 for r, _ in probe.windows})
    cols = sorted({c[0] - 1 for _, c in probe.windows})
    assert rows == starts(10, 6, 3) and cols == starts(12, 8, 4)


def test_right_answer_passes(capsys):
    def my_sliding_window(model, images, crop, stride):
        return sliding(model, images, crop, stride)

    check_sliding_window(my_sliding_window)
    assert capsys.readouterr().out == "✓ my_sliding_window matches pspnet_edu.inference.predict_probs on 5 cases\n"


def no_clamp(size, crop, stride):
    return list(range(0, max(size - crop, 0) + 1, stride))  # misses the border


def past_border(size, crop, stride):
    return [i * stride for i in range(math.ceil(max(size - crop, 0) / stride) + 1)]  # last window cut short


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda m, x, c, s: sliding(m, x, c, s, grid=no_clamp), "other windows than the reference's"),
        (lambda m, x, c, s: sliding(m, x, c, s, grid=past_border), "every window must be exactly the crop"),
        (lambda m, x, c, s: sliding(m, x, c, s, centre=False), "other windows than the reference's"),
        (lambda m, x, c, s: sliding(m, x, c, s, average="logits"), "average the softmax PROBABILITIES"),
        (lambda m, x, c, s: sliding(m, x, c, s, divide=False), "must sum to 1"),
        (lambda m, x, c, s: m(x)["out"].softmax(1), "every window must be exactly the crop"),  # no windows at all
        (lambda m, x, c, s: sliding(m, x, c, s)[..., :-1], "return probabilities of shape (B, C, H, W)"),
    ],
)
def test_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_sliding_window(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value), str(info.value)
