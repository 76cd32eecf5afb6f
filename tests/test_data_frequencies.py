"""Tests for pspnet_edu.data.frequencies: each trainId's share of the labelled pixels of a split."""

import numpy as np
import pytest
import torch
from PIL import Image

from pspnet_edu.data import CityscapesSegmentation, generate_synthetic
from pspnet_edu.data.frequencies import class_frequencies
from pspnet_edu.data.labels import NUM_CLASSES


def _label(path, values):
    Image.fromarray(np.array(values, np.uint8)).save(path)
    return path


def test_shares_count_trainids_over_files_and_leave_void_out(tmp_path):
    a = _label(tmp_path / "a_gtFine_labelIds.png", [[7, 7, 8, 0]])  # road, road, sidewalk, unlabeled
    b = _label(tmp_path / "b_gtFine_labelIds.png", [[26, 26, 26, 26]])  # car (trainId 13) x4
    shares = class_frequencies([a, b])
    assert shares.shape == (NUM_CLASSES,) and shares.dtype == torch.float64
    assert shares[0] == pytest.approx(2 / 7) and shares[1] == pytest.approx(1 / 7) and shares[13] == pytest.approx(4 / 7)
    assert float(shares.sum()) == pytest.approx(1.0)


def test_synthcity_shares_equal_the_dataset_masks(tmp_path):
    dataset = CityscapesSegmentation(generate_synthetic(tmp_path / "synth", train=4, val=1, size=(48, 96)), "train")
    shares = class_frequencies(label for _, label in dataset.samples)
    counts = sum(torch.bincount(dataset[i][1].flatten(), minlength=256)[:NUM_CLASSES] for i in range(len(dataset)))
    assert torch.allclose(shares, counts.double() / counts.sum())


def test_no_file_or_only_void_is_an_error_that_says_so(tmp_path):
    with pytest.raises(ValueError, match="no label files"):
        class_frequencies([])
    void = _label(tmp_path / "v_gtFine_labelIds.png", [[0, 0], [1, 2]])
    with pytest.raises(ValueError, match="no labelled pixel"):
        class_frequencies([void])
