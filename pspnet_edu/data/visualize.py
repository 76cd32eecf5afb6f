"""Colouring trainId masks, overlays and legends for figures.

The figures use :data:`TEACHING_PALETTE`: the Cityscapes palette with one colour changed.
Deviation: Cityscapes draws bus (0, 60, 100) and train (0, 80, 100) in nearly the same dark
blue, and those two are one of the course's context pairs, the classes a learner must tell
apart in every prediction; the course draws train in teal (0, 170, 170) instead. Pass
``palette=PALETTE`` for the official colours (lesson 06 shows them).

Taught in notebooks/06_cityscapes_data.ipynb and used by the training figures (07, 09).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pspnet_edu.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, PALETTE

IGNORE_COLOUR = (0, 0, 0)  # Cityscapes colours "unlabeled" black
TRAIN_TEACHING_COLOUR = (0, 170, 170)  # teal: far from bus (0, 60, 100) and from every other class


def _teaching_palette() -> np.ndarray:
    palette = PALETTE.copy()
    palette[CLASS_NAMES.index("train")] = TRAIN_TEACHING_COLOUR
    palette.setflags(write=False)
    return palette


TEACHING_PALETTE: np.ndarray = _teaching_palette()  # (19, 3) uint8, the figures' colours (see above)


def _to_numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def colorize(train_ids: np.ndarray | torch.Tensor, palette: np.ndarray = TEACHING_PALETTE) -> np.ndarray:
    """trainIds (H, W) -> uint8 RGB (H, W, 3) in ``palette`` (the course's colours); 255 (ignore) is black.

    >>> colorize(np.array([[0, 255, 16]])).tolist()
    [[[128, 64, 128], [0, 0, 0], [0, 170, 170]]]
    >>> colorize(np.array([[16]]), palette=PALETTE).tolist()  # Cityscapes' own train colour
    [[[0, 80, 100]]]
    """
    ids = _to_numpy(train_ids).astype(np.int64)
    if ids.ndim != 2:
        raise ValueError(f"expected a (H, W) mask of trainIds, got shape {ids.shape}")
    bad = (ids != IGNORE_INDEX) & ((ids < 0) | (ids >= NUM_CLASSES))
    if bad.any():
        raise ValueError(f"mask holds values {sorted(set(ids[bad].tolist()))[:5]} that are neither trainIds 0..18 "
                         "nor 255; convert labelIds with pspnet_edu.data.labels.label_ids_to_train_ids first")
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:NUM_CLASSES] = palette
    table[IGNORE_INDEX] = IGNORE_COLOUR
    return table[ids]


def to_uint8_image(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float (3, H, W) tensor in [0, 1] or a uint8 (H, W, 3) array -> uint8 (H, W, 3)."""
    array = _to_numpy(image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)
    return array


def overlay(image: np.ndarray | torch.Tensor, train_ids: np.ndarray | torch.Tensor, alpha: float = 0.5) -> np.ndarray:
    """Blend the coloured mask over the image: uint8 (H, W, 3). Ignored pixels show the image.

    ``image`` is a float (3, H, W) tensor in [0, 1] (denormalise first) or a uint8 (H, W, 3) array.

    >>> overlay(np.zeros((1, 2, 3), np.uint8), np.array([[0, 255]]), alpha=1.0).tolist()
    [[[128, 64, 128], [0, 0, 0]]]
    """
    rgb = to_uint8_image(image).astype(np.float32)
    ids = _to_numpy(train_ids)
    if rgb.shape[:2] != ids.shape:
        raise ValueError(f"image is {rgb.shape[:2]} but the mask is {ids.shape}; they must have the same H, W")
    colours = colorize(ids).astype(np.float32)
    weight = np.where(ids == IGNORE_INDEX, 0.0, float(alpha))[..., None]
    return (rgb * (1 - weight) + colours * weight + 0.5).astype(np.uint8)


ERROR_COLOURS = {"right": (210, 210, 210), "wrong": (220, 30, 30), "ignored": (0, 0, 0)}


def error_map(prediction: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> np.ndarray:
    """uint8 RGB (H, W, 3): pixels predicted right in light grey, wrong in red, ignored in black.

    Shown beside a prediction it shows every mistake, also between classes whose colours are
    close (person and rider, car and truck): a bus predicted as train is red here.

    >>> error_map(np.array([[0, 1, 2]]), np.array([[0, 2, 255]])).tolist()
    [[[210, 210, 210], [220, 30, 30], [0, 0, 0]]]
    """
    pred, true = _to_numpy(prediction), _to_numpy(target)
    if pred.shape != true.shape:
        raise ValueError(f"prediction is {pred.shape} but the target is {true.shape}; they must have the same H, W")
    out = np.empty((*true.shape, 3), dtype=np.uint8)
    out[:] = ERROR_COLOURS["wrong"]
    out[pred == true] = ERROR_COLOURS["right"]
    out[true == IGNORE_INDEX] = ERROR_COLOURS["ignored"]
    return out


def legend_handles(class_ids: Sequence[int] | None = None, palette: np.ndarray = TEACHING_PALETTE) -> list:
    """Matplotlib patches (colour + class name) for ``class_ids`` (default: all 19 trainIds), in ``palette``.

    Use as ``ax.legend(handles=legend_handles(), loc="center left", bbox_to_anchor=(1, 0.5))``.
    """
    from matplotlib.patches import Patch

    ids = range(NUM_CLASSES) if class_ids is None else class_ids
    return [Patch(facecolor=palette[i] / 255.0, edgecolor="black", linewidth=0.5, label=f"{i} {CLASS_NAMES[i]}")
            for i in ids]


def present_classes(*masks: np.ndarray | torch.Tensor) -> list[int]:
    """The trainIds that occur in any of the masks (255 left out), sorted; for compact legends.

    >>> present_classes(np.array([[2, 255, 0]]), np.array([[2]]))
    [0, 2]
    """
    ids = set()
    for mask in masks:
        ids |= set(np.unique(_to_numpy(mask)).tolist())
    return sorted(int(i) for i in ids if i != IGNORE_INDEX)


def show_samples(samples: Sequence[tuple], titles: Sequence[str] = ("image", "labels"), alpha: float = 0.0,
                 legend: bool = True, column_width: float = 4.0):
    """Plot rows of (image, mask[, mask, ...]) in a grid; returns the matplotlib Figure.

    ``image`` is a float (3, H, W) in [0, 1] (denormalise normalised images first) or uint8
    (H, W, 3); each mask is a trainId (H, W) array, drawn in colour (over the image if
    ``alpha`` > 0). The legend lists the classes present.
    """
    import matplotlib.pyplot as plt

    rows, cols = len(samples), len(samples[0])
    image0 = to_uint8_image(samples[0][0])
    aspect = image0.shape[0] / image0.shape[1]
    figure, axes = plt.subplots(rows, cols, figsize=(column_width * cols, column_width * aspect * rows + 0.4),
                                squeeze=False)
    for r, sample in enumerate(samples):
        image = to_uint8_image(sample[0])
        for c, item in enumerate(sample):
            ax = axes[r, c]
            if c == 0:
                ax.imshow(image)
            else:
                ax.imshow(overlay(image, item, alpha) if alpha > 0 else colorize(item), interpolation="nearest")
            if r == 0 and c < len(titles):
                ax.set_title(titles[c])
            ax.set_axis_off()
    if legend:
        ids = present_classes(*(m for sample in samples for m in sample[1:]))
        figure.legend(handles=legend_handles(ids), loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.tight_layout()
    return figure
