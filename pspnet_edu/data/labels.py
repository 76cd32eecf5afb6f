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
    """Map labelIds to trainIds with one table lookup; untrained ids and -1 become 255.

    Accepts a numpy array or a tensor of any integer dtype and shape and returns the same
    kind: a uint8 array, or a long tensor (the dtype ``CrossEntropyLoss`` wants). Values
    outside 0..255 other than -1 raise a ValueError rather than wrapping around.

    >>> label_ids_to_train_ids(np.array([7, 8, 0, 26, -1, 33]))
    array([  0,   1, 255,  13, 255,  18], dtype=uint8)
    >>> label_ids_to_train_ids(torch.tensor([[23, 24]]))
    tensor([[10, 11]])
    """
    if isinstance(label_ids, torch.Tensor):
        if label_ids.is_floating_point():
            raise ValueError(f"labelIds must be integers, got a tensor of {label_ids.dtype}")
        table = torch.from_numpy(LABEL_TO_TRAIN_TABLE.astype(np.int64)).to(label_ids.device)
        ids = label_ids.long()
        _check_range(int(ids.min()) if ids.numel() else 0, int(ids.max()) if ids.numel() else 0)
        # -1 (licence plate) indexes the table from the end, and entry 255 is 255: ignore.
        return table[ids]
    array = np.asarray(label_ids)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labelIds must be integers, got an array of {array.dtype}")
    if array.size:
        _check_range(int(array.min()), int(array.max()))
    return LABEL_TO_TRAIN_TABLE[array.astype(np.int64, copy=False)]


def _check_range(low: int, high: int) -> None:
    if low < -1 or high >= NUM_LABEL_IDS:
        raise ValueError(
            f"labelIds must lie in -1..255, got values from {low} to {high}; "
            "is this a trainId mask or an instanceIds image instead of a *_gtFine_labelIds.png?"
        )


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map trainIds back to labelIds (255 -> 0, 'unlabeled'); used to write label PNGs.

    >>> train_ids_to_label_ids(np.array([0, 10, 255]))
    array([ 7, 23,  0], dtype=uint8)
    """
    table = np.zeros(NUM_LABEL_IDS, dtype=np.uint8)
    table[:NUM_CLASSES] = TRAIN_ID_TO_LABEL_ID
    return table[np.asarray(train_ids).astype(np.int64)]
