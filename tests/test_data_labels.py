"""Tests of pspnet_edu.data.labels: the labelId -> trainId table against torchvision's."""

import numpy as np
import pytest
import torch
from torchvision.datasets import Cityscapes

from pspnet_edu.data import labels
from pspnet_edu.data.labels import (
    CLASS_NAMES,
    IGNORE_INDEX,
    NUM_CLASSES,
    PALETTE,
    label_ids_to_train_ids,
    train_ids_to_label_ids,
)

# Reference values from the Cityscapes scripts (helpers/labels.py), typed here on purpose so
# that the table taken from torchvision is checked against an independent source.
KNOWN = {0: 255, 1: 255, 4: 255, 6: 255, 7: 0, 8: 1, 9: 255, 10: 255, 11: 2, 12: 3, 13: 4, 14: 255,
         15: 255, 16: 255, 17: 5, 18: 255, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
         27: 14, 28: 15, 29: 255, 30: 255, 31: 16, 32: 17, 33: 18, -1: 255}


def test_reference_values_numpy():
    ids = np.array(list(KNOWN))
    assert label_ids_to_train_ids(ids).tolist() == list(KNOWN.values())


def test_every_label_id_matches_torchvision_table():
    for c in Cityscapes.classes:
        expected = c.train_id if 0 <= c.train_id < NUM_CLASSES else IGNORE_INDEX
        assert int(label_ids_to_train_ids(np.array([c.id]))[0]) == expected, c.name


def test_unknown_ids_up_to_255_are_ignored():
    ids = np.arange(34, 256)
    assert (label_ids_to_train_ids(ids) == IGNORE_INDEX).all()


def test_image_shaped_arrays_and_tensors():
    image = np.array([[7, 0, -1], [26, 33, 9]], dtype=np.int16)
    expected = [[0, 255, 255], [13, 18, 255]]
    out = label_ids_to_train_ids(image)
    assert out.dtype == np.uint8 and out.tolist() == expected
    out = label_ids_to_train_ids(torch.from_numpy(image))
    assert out.dtype == torch.int64 and out.tolist() == expected
    uint8 = label_ids_to_train_ids(torch.tensor([[7, 255]], dtype=torch.uint8))
    assert uint8.tolist() == [[0, 255]]


def test_input_is_not_modified():
    image = np.array([7, 8, -1])
    label_ids_to_train_ids(image)
    assert image.tolist() == [7, 8, -1]


@pytest.mark.parametrize("bad", [np.array([256]), np.array([-2]), torch.tensor([300])])
def test_out_of_range_ids_raise(bad):
    with pytest.raises(ValueError, match="labelIds must lie in -1..255"):
        label_ids_to_train_ids(bad)


def test_float_input_raises():
    with pytest.raises(ValueError, match="integers"):
        label_ids_to_train_ids(np.array([7.0]))
    with pytest.raises(ValueError, match="integers"):
        label_ids_to_train_ids(torch.tensor([7.0]))


def test_names_and_palette():
    assert len(CLASS_NAMES) == NUM_CLASSES == 19
    assert CLASS_NAMES[0] == "road" and CLASS_NAMES[10] == "sky" and CLASS_NAMES[18] == "bicycle"
    assert PALETTE.shape == (19, 3) and PALETTE.dtype == np.uint8
    assert PALETTE[0].tolist() == [128, 64, 128] and PALETTE[13].tolist() == [0, 0, 142]
    with pytest.raises(ValueError):
        PALETTE[0, 0] = 1  # read-only: a shared constant


def test_train_ids_back_to_label_ids_round_trip():
    train_ids = np.arange(NUM_CLASSES)
    assert label_ids_to_train_ids(train_ids_to_label_ids(train_ids)).tolist() == train_ids.tolist()
    assert labels.TRAIN_ID_TO_LABEL_ID[0] == 7
