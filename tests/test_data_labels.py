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


def test_255_is_ignored_but_values_that_are_no_label_ids_raise():
    assert label_ids_to_train_ids(np.array([255, 7])).tolist() == [IGNORE_INDEX, 0]
    # 34..254 are no labelIds: once silently ignored, so that a wrong mask trained to mIoU 0.
    for bad in (np.array([7, 34]), np.array([[40, 100], [7, 254]], np.uint8), torch.tensor([7, 200])):
        with pytest.raises(ValueError, match=r"values (34|40, 100, 254|200), which are no Cityscapes labelIds"):
            label_ids_to_train_ids(bad)


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
    with pytest.raises(ValueError, match=r"values -?\d+, which are no Cityscapes labelIds \(labelIds are 0..33"):
        label_ids_to_train_ids(bad)


# --- check_label_file: a *_gtFine_labelIds.png that holds something else is named. ------------

@pytest.mark.parametrize("values", [
    list(range(34)),  # every labelId, the void classes 0..6 included
    [0, 1, 3, 4, 7, 8, 11, 21, 23, 26],  # a typical Cityscapes frame: unlabeled, ego vehicle, out of roi, static
    [0, 7, 8, 11, 17, 20, 21, 22, 23, 24, 26, 28, 31],  # the labelIds Synthcity draws, and 0 (unlabeled)
    [7, 8, 11, 17],  # only values <= 18 but no 255: labelIds of road, sidewalk, building, pole
    [7, 26, 255],  # 255 next to labelIds above 18: some tools store the licence plate (-1) as 255
])
def test_real_label_id_files_are_accepted(values):
    labels.check_label_file(np.array(values, np.uint8).reshape(1, -1), "x_gtFine_labelIds.png")
    labels.check_label_file(np.array(values, np.int32).reshape(1, -1), "16-bit file")


@pytest.mark.parametrize("values", [[0, 1, 2, 10, 13, 255], [0, 18, 255], [255]])
def test_a_train_id_mask_is_recognised(values):
    with pytest.raises(ValueError, match=r"aachen_gtFine_labelIds.png looks like a trainId mask .*"
                                         r"hold labelIds 0..33; regenerate it, convert it"):
        labels.check_label_file(np.array(values, np.uint8).reshape(1, -1), "aachen_gtFine_labelIds.png")


@pytest.mark.parametrize("values, shown", [([7, 34, 200], "34, 200"), ([7, 1000, 26000], "1000, 26000"),
                                            ([254, 0], "254")])
def test_values_that_are_no_label_ids_are_listed_with_the_file(values, shown):
    with pytest.raises(ValueError, match=rf"f.png holds values {shown}, which are no Cityscapes labelIds.*"
                                         "Use the labelIds files"):
        labels.check_label_file(np.array(values, np.int64).reshape(1, -1), "f.png")


def test_label_file_of_floats():
    with pytest.raises(ValueError, match="f.png holds float32 values"):
        labels.check_label_file(np.zeros((2, 2), np.float32), "f.png")


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


# --- check_label_set: a sample of a split's files, taken together. -------------------------------

@pytest.mark.parametrize("files", [
    [[7, 8, 11, 17], [0, 7, 21, 23, 26]],  # a frame of road, sidewalk, building and pole beside a street scene
    [[0], [0, 1, 3]],  # unannotated frames: void labelIds only
    [[7, 8], [0, 255]],  # 255 present: check_label_file judges each such file
])
def test_label_id_samples_pass(files):
    labels.check_label_set([np.array(f) for f in files], [f"{i}.png" for i in range(len(files))])


def test_a_sample_of_train_id_masks_without_255_is_refused():
    """Synthcity's classes as trainIds: road 0, sidewalk 1, building 2, vegetation 8, sky 10, car 13."""
    with pytest.raises(ValueError, match=r"look like trainId masks.*the 2 checked \(e.g. a.png\) hold only values "
                                         r"0, 1, 2, 8, 10, 13"):
        labels.check_label_set([np.array([0, 1, 2, 10]), np.array([0, 8, 10, 13])], ["a.png", "b.png"])
