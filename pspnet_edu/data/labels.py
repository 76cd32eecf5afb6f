"""The Cityscapes label table: labelIds, trainIds, names and colours.

Cityscapes annotates 34 *labelIds* (plus ``-1`` for the licence plate, which some tools
use), but the benchmark trains and evaluates on 19 of them, renumbered as *trainIds*
0..18; every other labelId is ignored (``IGNORE_INDEX = 255``). This module takes the
table from ``torchvision.datasets.Cityscapes.classes`` rather than typing it again, and
builds a lookup table that converts a whole labelId image in one indexing operation.

Note on ``-1``: labelId PNGs are 8-bit, so ``-1`` can never be stored in a file; it
only appears in arrays built in memory (and in torchvision's table). It maps to 255.

Taught in notebooks/06_cityscapes_data.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.datasets import Cityscapes

from pspnet_edu.constants import IGNORE_INDEX, NUM_CLASSES  # 255 and 19, shared with the loss and metrics

NUM_LABEL_IDS = 256  # labelId PNGs are 8-bit, so a 256-entry table covers every pixel value

# (name, labelId, trainId, category, colour) rows, exactly as torchvision ships them.
CITYSCAPES_CLASSES = tuple(Cityscapes.classes)


def _trained_classes() -> list:
    trained = sorted((c for c in CITYSCAPES_CLASSES if 0 <= c.train_id < NUM_CLASSES),
                     key=lambda c: c.train_id)
    assert [c.train_id for c in trained] == list(range(NUM_CLASSES)), "unexpected label table"
    return trained


CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in _trained_classes())
# Cityscapes colour of each trainId, (19, 3) uint8; used by data.visualize.
PALETTE: np.ndarray = np.array([c.color for c in _trained_classes()], dtype=np.uint8)
PALETTE.setflags(write=False)
# labelId of each trainId, e.g. TRAIN_ID_TO_LABEL_ID[0] == 7 (road).
TRAIN_ID_TO_LABEL_ID: tuple[int, ...] = tuple(c.id for c in _trained_classes())
# labelId by class name, for every class of the table ("road" -> 7, "license plate" -> -1).
LABEL_ID: dict[str, int] = {c.name: c.id for c in CITYSCAPES_CLASSES}
# The largest labelId (33, bicycle); 34..254 are no labelIds at all.
MAX_LABEL_ID: int = max(c.id for c in CITYSCAPES_CLASSES)


def _lookup_table() -> np.ndarray:
    """(256,) uint8: entry ``i`` is the trainId of labelId ``i`` (255 if not trained)."""
    table = np.full(NUM_LABEL_IDS, IGNORE_INDEX, dtype=np.uint8)
    for c in CITYSCAPES_CLASSES:
        if c.id >= 0 and 0 <= c.train_id < NUM_CLASSES:
            table[c.id] = c.train_id
    table.setflags(write=False)
    return table


LABEL_TO_TRAIN_TABLE: np.ndarray = _lookup_table()


def label_ids_to_train_ids(label_ids: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Map labelIds to trainIds with one table lookup; untrained ids, -1 and 255 become 255.

    Accepts a numpy array or a tensor of any integer dtype and shape and returns the same
    kind: a uint8 array, or a long tensor (the dtype ``CrossEntropyLoss`` wants). A value that
    is no labelId (34..254, or outside -1..255) raises a ValueError naming it, rather than
    being silently ignored: such a mask is an instanceIds image, a colour image or a mix-up.

    >>> label_ids_to_train_ids(np.array([7, 8, 0, 26, -1, 33]))
    array([  0,   1, 255,  13, 255,  18], dtype=uint8)
    >>> label_ids_to_train_ids(torch.tensor([[23, 24]]))
    tensor([[10, 11]])
    """
    if isinstance(label_ids, torch.Tensor):
        if label_ids.is_floating_point() or label_ids.is_complex() or label_ids.dtype == torch.bool:
            raise ValueError(f"labelIds must be integers, got a tensor of {label_ids.dtype}")
        table = torch.from_numpy(LABEL_TO_TRAIN_TABLE.astype(np.int64)).to(label_ids.device)
        ids = label_ids.long()
        bad = ids[((ids > MAX_LABEL_ID) & (ids != IGNORE_INDEX)) | (ids < -1)]
        if bad.numel():
            raise ValueError(_not_label_ids_message("the labelIds", np.unique(bad.cpu().numpy())))
        # -1 (licence plate) indexes the table from the end, and entry 255 is 255: ignore.
        return table[ids]
    array = np.asarray(label_ids)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labelIds must be integers, got an array of {array.dtype}")
    ids = array.astype(np.int64, copy=False)
    bad = ids[((ids > MAX_LABEL_ID) & (ids != IGNORE_INDEX)) | (ids < -1)]
    if bad.size:
        raise ValueError(_not_label_ids_message("the labelIds", np.unique(bad)))
    return LABEL_TO_TRAIN_TABLE[ids]


def _shown(values: np.ndarray, most: int = 6) -> str:
    """``[40, 100, 200]`` -> ``"40, 100, 200"``; long lists are cut: ``"0, 1, ... (25 values)"``."""
    values = [int(v) for v in values]
    if len(values) <= most:
        return ", ".join(map(str, values))
    return ", ".join(map(str, values[:most])) + f", ... ({len(values)} values)"


def _not_label_ids_message(source: str, bad: np.ndarray) -> str:
    """``source`` is the subject of the sentence: "the labelIds" or a file name."""
    verb = "hold" if source == "the labelIds" else "holds"
    return (f"{source} {verb} values {_shown(bad)}, which are no Cityscapes labelIds (labelIds are "
            f"0..{MAX_LABEL_ID}; 255 and -1 are read as ignore): is it an instanceIds, colour or prediction "
            f"image saved as a *_gtFine_labelIds.png? Use the labelIds files of the Cityscapes package "
            f"or regenerate the dataset")


def check_label_file(label_ids: np.ndarray, source: str) -> None:
    """Raise a ValueError, naming ``source`` and the fix, unless ``label_ids`` look like a labelIds file.

    ``label_ids`` is the array read from a ``*_gtFine_labelIds.png``. The rule:

    - every value must be a labelId 0..33, or 255 (read as ignore): a value 34..254 (or above
      255, from a 16-bit file) is no labelId, and the message lists the values found;
    - a file that holds 255 and, apart from it, only values 0..18 is taken for a **trainId**
      mask (19 classes 0..18, 255 = ignore), the usual mix-up: read as labelIds its road
      (trainId 0) would become "unlabeled", and it would train to an mIoU of 0.

    Why this rejects no real labelIds file: labelIds stop at 33 and Cityscapes' own
    ``*_gtFine_labelIds.png`` never hold 255 (the licence plate, -1, is not drawn); nor do the
    files Synthcity draws or the subset builder copies (by nearest neighbour, so no new value
    appears). A trainId mask made by Cityscapes' ``createTrainIdLabelImgs.py`` has 255 on every
    void pixel (ego vehicle, out of roi, ...), so it is recognised. Limitation: a trainId mask
    without one ignored pixel holds only 0..18 and cannot be told from labelIds; it passes.

    >>> check_label_file(np.array([[0, 1, 7], [26, 33, 4]], np.uint8), "a.png")   # labelIds: fine
    >>> check_label_file(np.array([[0, 13, 255]], np.uint8), "b.png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: b.png looks like a trainId mask (values 0, 13 and 255: the 19 trainIds 0..18 and ignore), ...
    """
    present = values_present(label_ids, source)
    bad = present[((present > MAX_LABEL_ID) & (present != IGNORE_INDEX)) | (present < 0)]
    if bad.size:
        raise ValueError(_not_label_ids_message(source, bad))
    classes = present[present != IGNORE_INDEX]  # what is left is 0..33
    if IGNORE_INDEX in present and (classes < NUM_CLASSES).all():
        found = f"values {_shown(classes)} and 255" if classes.size else "only the value 255"
        raise ValueError(
            f"{source} looks like a trainId mask ({found}: the {NUM_CLASSES} trainIds "
            f"0..{NUM_CLASSES - 1} and ignore), but the *_gtFine_labelIds.png files hold labelIds "
            f"0..{MAX_LABEL_ID}; regenerate it, convert it with pspnet_edu.data.labels.train_ids_to_label_ids, "
            "or take the labelIds file from the Cityscapes package"
        )


def values_present(label_ids: np.ndarray, source: str) -> np.ndarray:
    """The distinct values of a label array, sorted (int64); a ValueError naming ``source`` if not integers.

    >>> values_present(np.array([[7, 7, 23], [0, 7, 23]], np.uint8), "a.png")
    array([ 0,  7, 23])
    """
    array = np.asarray(label_ids)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{source} holds {array.dtype} values; a *_gtFine_labelIds.png holds one integer "
                         "labelId per pixel (8-bit grey): regenerate it or take it from the Cityscapes package")
    if array.dtype == np.uint8:  # the usual case: count the 256 possible values, faster than np.unique
        return np.flatnonzero(np.bincount(array.ravel(), minlength=NUM_LABEL_IDS))
    return np.unique(array.astype(np.int64, copy=False))


FIRST_VOID_FREE_LABEL_ID = 7  # labelIds 0..6 are void (unlabeled, ego vehicle, out of roi, ...); 7 is road


def check_label_set(present: list[np.ndarray], sources: list[str]) -> None:
    """Raise a ValueError unless label files, taken together, look like labelIds rather than trainIds.

    ``present[i]`` are the values of the file ``sources[i]`` (:func:`values_present`); pass a
    sample of a split's files (a handful, spread over the split). :func:`check_label_file`
    catches a trainId mask that holds 255; this catches the ones without it, e.g. Synthcity
    converted to trainIds, which has no void pixel. One file cannot tell: a labelIds frame of
    only road, sidewalk, building and pole (7, 8, 11, 17) holds only 0..18 too. But a street
    scene shows sky, vegetation, a car or a person (labelIds 21, 23, 26, 24), so a sample of
    files of which none holds a labelId 19..33 (nor 255), while some hold classes
    (values 7..18), is a set of trainId masks: read as labelIds, its road (trainId 0) would
    become "unlabeled" and it would train to an mIoU near 0. Files holding only void labelIds
    0..6 (unannotated frames) are not taken for trainIds: there is nothing in them to tell.

    >>> check_label_set([np.array([0, 7, 11]), np.array([7, 23, 26])], ["a.png", "b.png"])  # labelIds
    >>> check_label_set([np.array([0, 1, 2, 10]), np.array([0, 2, 8, 13])], ["a.png", "b.png"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: the label files look like trainId masks, not labelIds: the 2 checked (e.g. a.png) hold only ...
    """
    values = np.unique(np.concatenate(present)) if present else np.array([], np.int64)
    classes = values[values != IGNORE_INDEX]
    if IGNORE_INDEX in values or not classes.size or classes.max() >= NUM_CLASSES:
        return  # 255 or a labelId 19..33: labelIds (a trainId file with 255 is check_label_file's)
    if classes.max() < FIRST_VOID_FREE_LABEL_ID:
        return  # void labelIds only: unannotated frames
    raise ValueError(
        f"the label files look like trainId masks, not labelIds: the {len(sources)} checked (e.g. {sources[0]}) "
        f"hold only values {_shown(classes)}, all of them trainIds 0..{NUM_CLASSES - 1}, and none of the "
        f"labelIds {NUM_CLASSES}..{MAX_LABEL_ID} (vegetation, sky, person, car, ...) that street scenes hold; "
        "the *_gtFine_labelIds.png files must hold labelIds: regenerate them, convert them with "
        "pspnet_edu.data.labels.train_ids_to_label_ids, or take them from the Cityscapes package"
    )


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map trainIds back to labelIds (255 -> 0, 'unlabeled'); used to write label PNGs.

    >>> train_ids_to_label_ids(np.array([0, 10, 255]))
    array([ 7, 23,  0], dtype=uint8)
    """
    table = np.zeros(NUM_LABEL_IDS, dtype=np.uint8)
    table[:NUM_CLASSES] = TRAIN_ID_TO_LABEL_ID
    return table[np.asarray(train_ids).astype(np.int64)]
