"""Self-check for notebooks/08_evaluation.ipynb: sliding-window inference.

- :func:`check_sliding_window`: ``my_sliding_window(model, images, crop, stride)`` ->
  softmax probabilities ``(B, C, H, W)`` of normalised images ``(B, 3, H, W)`` from ``crop``
  windows ``(h, w)`` taken every ``stride`` ``(sh, sw)`` pixels, the last window of each row
  and column moved back to end at the border, images smaller than the crop padded with 0 (the
  mean colour after normalisation) split evenly on both sides, and the probabilities of
  overlapping windows averaged; against
  ``pspnet_edu.inference.predict_probs(model, images, mode="sliding", crop=crop)`` (hszhao/semseg
  ``tool/test.py``, whose stride is ``ceil(2/3 * crop)``).

The cases: an image smaller than the crop, an exact fit, many windows, a tall image with a wide
crop (padded across, slid down), and the tiny PSPNet over a few windows. Most cases use a
*probe* instead of a network: its input images hold each pixel's own row and column in two
channels, so the probe records which pixels every window it is given covers, and its logits
depend on the whole window (a global average, as the PPM's) and on the place in the window, so
averaging logits instead of probabilities, or padding on one side only, gives other numbers. A wrong answer is explained by the windows: their size,
where they start, where the padding went.

While the learner's function runs, ``predict_probs``, ``predict`` and the two private helpers
behind them are hidden (:func:`pspnet_edu.checks._core.hidden`); torch's ``F.pad``,
``softmax`` and slicing are the bricks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pspnet_edu.checks._core import (
    differences,
    fail,
    hidden,
    learner_code,
    learner_name,
    passed,
    refuse_reference,
    require_callable,
)
from pspnet_edu.inference import predict, predict_probs, sliding_window_probs, window_starts
from pspnet_edu.pspnet import PSPNet, preset_config

SLIDING_WINDOW_HIDDEN = (predict_probs, predict, sliding_window_probs, window_starts)  # while the learner runs

PROBE_CLASSES = 5

SLIDING_HINT = ("pad the images to at least the crop (F.pad with 0, top = pad_h // 2, left = pad_w // 2); along each "
                "axis take window starts 0, stride, 2 * stride, ... and move the last one back to size - crop so that "
                "it ends at the border; add softmax(model(window)['out'], dim=1) into a running sum and count the "
                "windows covering each pixel; divide, then cut the padding away.")


class CoordinateProbe(nn.Module):
    """A stand-in network that records the pixels of every window it sees.

    Its images hold ``row + 1`` in channel 0 and ``column + 1`` in channel 1 (0 is padding),
    so the largest value of each row of channel 0 in a window says which image row it is. Its logits mix each
    pixel with the mean of its window, like a network with global context, and with the
    pixel's place in the window, like a network that sees the window's border.
    """

    def __init__(self, classes: int = PROBE_CLASSES) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(7)
        self.register_buffer("local", 0.8 * torch.randn(classes, 3, generator=generator))
        self.register_buffer("context", 0.8 * torch.randn(classes, 3, generator=generator))
        self.register_buffer("position", torch.randn(classes, 2, generator=generator))
        self.windows: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def forward(self, x: Tensor) -> dict[str, Tensor]:  # x: (B, 3, h, w)
        for window in x:
            self.windows.append((tuple(window[0].amax(dim=1).round().long().tolist()),  # rows, 0 = padding
                                 tuple(window[1].amax(dim=0).round().long().tolist())))  # columns
        scaled = x / 50.0  # coordinates of up to a few hundred pixels: keep the logits moderate
        local = torch.einsum("kc,bchw->bkhw", self.local, scaled)  # (B, K, h, w)
        context = torch.einsum("kc,bc->bk", self.context, scaled.mean(dim=(2, 3)))[..., None, None]  # (B, K, 1, 1)
        height, width = x.shape[-2:]
        ys = torch.linspace(-1, 1, height, device=x.device)[:, None].expand(height, width)
        xs = torch.linspace(-1, 1, width, device=x.device)[None, :].expand(height, width)
        where = self.position[:, 0, None, None] * ys + self.position[:, 1, None, None] * xs  # (K, h, w)
        return {"out": local + context + where}  # (B, K, h, w)


def coordinate_images(batch: int, height: int, width: int, seed: int = 0) -> Tensor:
    """(B, 3, H, W): channel 0 holds row + 1, channel 1 column + 1, channel 2 noise."""
    rows = torch.arange(1, height + 1, dtype=torch.float32)[:, None].expand(height, width)
    cols = torch.arange(1, width + 1, dtype=torch.float32)[None, :].expand(height, width)
    noise = torch.randn(batch, height, width, generator=torch.Generator().manual_seed(seed))
    return torch.stack([rows.expand(batch, -1, -1), cols.expand(batch, -1, -1), noise], dim=1)


@dataclass(frozen=True)
class SlidingCase:
    about: str
    size: tuple[int, int]  # (H, W) of the images
    crop: tuple[int, int]
    stride_rate: float  # the stride given to the learner is ceil(rate * crop), as predict_probs computes it
    network: bool = False  # the tiny PSPNet instead of the probe
    batch: int = 2

    @property
    def stride(self) -> tuple[int, int]:
        return tuple(int(math.ceil(self.stride_rate * c)) for c in self.crop)  # type: ignore[return-value]


SLIDING_CASES = (
    SlidingCase("an image smaller than the crop: one padded window", (40, 50), (48, 64), 2 / 3),
    SlidingCase("an exact fit: one window, the whole image (the tiny PSPNet)", (48, 64), (48, 64), 2 / 3, network=True),
    SlidingCase("many windows, stride half the crop", (100, 150), (48, 48), 1 / 2),
    SlidingCase("a tall image and a wide crop: padded across, slid down", (120, 60), (48, 64), 2 / 3),
    SlidingCase("the tiny PSPNet over 2 x 3 windows", (64, 112), (48, 64), 2 / 3, network=True, batch=1),
)


def _network() -> PSPNet:
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)
        return PSPNet(preset_config("tiny", num_classes=PROBE_CLASSES, aux=False)).eval()


def _inputs(case: SlidingCase) -> tuple[nn.Module, Tensor]:
    if case.network:
        images = torch.randn(case.batch, 3, *case.size, generator=torch.Generator().manual_seed(1))
        return _network(), images
    return CoordinateProbe(), coordinate_images(case.batch, *case.size)


def _span(ids: tuple[int, ...]) -> str:
    """A window's extent along one axis: ``'0-39'``, or ``'pad 4 | 0-39 | pad 4'`` (ids: index + 1, 0 = padding)."""
    inside = [i - 1 for i in ids if i > 0]
    if not inside:
        return f"pad {len(ids)}"
    lead = next(k for k, i in enumerate(ids) if i > 0)
    trail = len(ids) - lead - len(inside)
    text = f"{inside[0]}-{inside[-1]}"
    return " | ".join(([f"pad {lead}"] if lead else []) + [text] + ([f"pad {trail}"] if trail else []))


def _windows_text(windows: list[tuple[tuple[int, ...], tuple[int, ...]]]) -> str:
    rows = sorted({_span(r) for r, _ in windows}, key=lambda t: (len(t), t))
    cols = sorted({_span(c) for _, c in windows}, key=lambda t: (len(t), t))
    count = len(set(windows))
    return f"{count} window{'s' if count != 1 else ''}; rows {rows}; columns {cols}"


def _diagnose(case: SlidingCase, expected: Tensor, got: Any, expected_windows: list[Any],
              got_windows: list[Any] | None) -> str:
    crop_h, crop_w = case.crop
    if not isinstance(got, Tensor) or got.shape != expected.shape:
        return "return probabilities of shape (B, C, H, W), the images' own size: cut the padding away. " + SLIDING_HINT
    if got_windows is not None:
        sizes = sorted({(len(r), len(c)) for r, c in got_windows})
        if sizes != [(crop_h, crop_w)]:
            return (f"every window must be exactly the crop {case.crop} (pad first, and end the last window at the "
                    f"border instead of cutting it short); yours were {sizes}. " + SLIDING_HINT)
        if set(got_windows) != set(expected_windows):
            return (f"other windows than the reference's: expected {_windows_text(expected_windows)}; got "
                    f"{_windows_text(got_windows)}. " + SLIDING_HINT)
    sums = got.detach().double().sum(dim=1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        return ("the values at a pixel must sum to 1 over the classes: softmax each window's logits, and divide the "
                "sum by the number of windows covering each pixel. " + SLIDING_HINT)
    return ("the windows are right but the averages are not: average the softmax PROBABILITIES of overlapping "
            "windows (not their logits, not their argmax), each window counted once. " + SLIDING_HINT)


def check_sliding_window(my_sliding_window: Callable[..., Tensor]) -> None:
    """Check ``my_sliding_window(model, images, crop, stride)`` on 5 cases.

    >>> def my_sliding_window(model, images, crop, stride):
    ...     (height, width), (crop_h, crop_w) = images.shape[-2:], crop
    ...     pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
    ...     padded = F.pad(images, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    ...     def starts(size, crop, stride):
    ...         return [min(i * stride, size - crop) for i in range(math.ceil(max(size - crop, 0) / stride) + 1)]
    ...     total, count = 0, torch.zeros(padded.shape[-2:])
    ...     for y in starts(padded.shape[-2], crop_h, stride[0]):
    ...         for x in starts(padded.shape[-1], crop_w, stride[1]):
    ...             probs = model(padded[..., y:y + crop_h, x:x + crop_w])["out"].softmax(dim=1)
    ...             total = total + F.pad(probs, (x, padded.shape[-1] - x - crop_w, y, padded.shape[-2] - y - crop_h))
    ...             count[y:y + crop_h, x:x + crop_w] += 1
    ...     return (total / count)[..., pad_h // 2:pad_h // 2 + height, pad_w // 2:pad_w // 2 + width]
    >>> check_sliding_window(my_sliding_window)
    ✓ my_sliding_window matches pspnet_edu.inference.predict_probs on 5 cases
    """
    require_callable(my_sliding_window)
    name = learner_name(my_sliding_window)
    refuse_reference(my_sliding_window, SLIDING_WINDOW_HIDDEN, name)
    prepared = []
    for case in SLIDING_CASES:  # the expected values first: predict_probs is hidden below
        model, images = _inputs(case)
        expected = predict_probs(model, images, mode="sliding", crop=case.crop, stride_rate=case.stride_rate)
        windows = list(model.windows) if isinstance(model, CoordinateProbe) else None
        prepared.append((case, images, expected, windows))
    with hidden(*SLIDING_WINDOW_HIDDEN) as hiding:
        for case, images, expected, expected_windows in prepared:
            model, _ = _inputs(case)
            call = (f"{name}(model, images of shape {tuple(images.shape)}, crop={case.crop}, "
                    f"stride={case.stride})  [{case.about}]")
            with learner_code(name, call, hiding), torch.no_grad():
                got = my_sliding_window(model, images.clone(), case.crop, case.stride)
            detail = differences(expected, got, rtol=1e-5, atol=1e-6)
            if detail is not None:
                got_windows = list(model.windows) if isinstance(model, CoordinateProbe) else None
                raise fail(call, expected, got, detail, _diagnose(case, expected, got, expected_windows, got_windows))
    passed(name, "pspnet_edu.inference.predict_probs", len(SLIDING_CASES))
