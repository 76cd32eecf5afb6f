"""Tests of pspnet_edu.data.visualize: palette colouring, overlays, legends, sample grids."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from pspnet_edu.data.labels import CLASS_NAMES, PALETTE  # noqa: E402
from pspnet_edu.data.visualize import colorize, legend_handles, overlay, present_classes, show_samples  # noqa: E402


def test_colorize_uses_the_cityscapes_palette():
    ids = torch.tensor([[0, 10, 255], [13, 18, 2]])
    rgb = colorize(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert rgb[0, 1].tolist() == [70, 130, 180]  # sky
    assert rgb[0, 2].tolist() == [0, 0, 0]  # ignore
    assert (rgb[1, 0] == PALETTE[13]).all()


def test_colorize_rejects_label_ids():
    with pytest.raises(ValueError, match="label_ids_to_train_ids"):
        colorize(np.array([[26, 0]]))


def test_overlay_blends_and_keeps_ignored_pixels():
    image = torch.ones(3, 1, 2)  # white, float in [0, 1]
    out = overlay(image, np.array([[0, 255]]), alpha=0.5)
    assert out[0, 1].tolist() == [255, 255, 255]
    assert out[0, 0].tolist() == [192, 160, 192]  # halfway between white and road purple
    with pytest.raises(ValueError, match="same H, W"):
        overlay(image, np.zeros((2, 2), np.int64))


def test_legend_and_grid():
    handles = legend_handles([0, 10])
    assert [h.get_label() for h in handles] == ["0 road", "10 sky"]
    assert len(legend_handles()) == len(CLASS_NAMES)
    mask = np.array([[0, 10], [255, 13]])
    assert present_classes(mask) == [0, 10, 13]
    figure = show_samples([(torch.rand(3, 2, 2), mask, mask)], titles=("image", "truth", "prediction"), alpha=0.5)
    assert len(figure.axes) == 3
    matplotlib.pyplot.close(figure)
