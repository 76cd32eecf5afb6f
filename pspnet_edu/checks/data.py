"""Self-checks for notebooks/06_cityscapes_data.ipynb.

- :func:`check_label_ids_to_train_ids`: ``my_label_ids_to_train_ids(label_ids)``, a numpy
  array of Cityscapes labelIds (any shape, -1 allowed) -> the array of trainIds (19 trained
  classes 0..18, everything else 255), against
  :func:`pspnet_edu.data.labels.label_ids_to_train_ids`.

While the learner's function runs, that function and the package's lookup table
``LABEL_TO_TRAIN_TABLE`` (its whole answer) and its builder ``_lookup_table`` are hidden (:func:`pspnet_edu.checks._core.hidden`);
torchvision's ``Cityscapes.classes``, the table the exercise reads, is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pspnet_edu.checks._core import Case, check_cases
from pspnet_edu.data import labels
from pspnet_edu.data.labels import CITYSCAPES_CLASSES, IGNORE_INDEX, label_ids_to_train_ids

# What check_label_ids_to_train_ids hides while the learner's code runs.
LABEL_IDS_TO_TRAIN_IDS_HIDDEN = (label_ids_to_train_ids, labels.LABEL_TO_TRAIN_TABLE, labels._lookup_table)

LABELS_HINT = ("build a 256-entry table filled with 255 (IGNORE_INDEX), write each trained class's trainId at "
               "its labelId (rows of torchvision.datasets.Cityscapes.classes with 0 <= train_id <= 18), "
               "then index the table with the labelIds; -1 (licence plate) must give 255 as well.")


def _every_label_id() -> np.ndarray:
    return np.array(sorted({c.id for c in CITYSCAPES_CLASSES}), dtype=np.int64)  # -1, 0..33


_LABEL_CASES = (
    Case((np.array([7, 8, 11, 21, 23, 24, 26]),), hint="road, sidewalk, building, vegetation, sky, person, car."),
    Case((np.array([0, 1, 3, 6, 9, 10]),), hint="unlabeled, ego vehicle, out of roi, ground, parking, rail track: all ignored."),
    Case((np.array([-1, 26, -1]),), hint="-1 is the licence plate in torchvision's table; it is not trained."),
    Case((_every_label_id(),), hint="every row of the Cityscapes table, -1..33."),
    Case((np.array([[7, 7, 8], [23, 0, 33]]),), hint="a 2-D image: keep its shape."),
    Case((np.arange(34, dtype=np.uint8).reshape(2, 17),), hint="a uint8 label image, as read from a PNG."),
    Case((np.array([], dtype=np.int64),), hint="an empty array."),
)


def _labels_diagnose(case: Case, expected: Any, got: Any) -> str:
    try:
        values = np.asarray(got)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        return "return a numpy array of the same shape. " + LABELS_HINT
    if values.shape != np.asarray(expected).shape:
        return "return one trainId per labelId, in an array of the same shape. " + LABELS_HINT
    if values.size and (values == -1).any():
        return ("torchvision's table gives the licence plate train_id -1; training and the metrics only know "
                "0..18 and 255, so map it to 255. " + LABELS_HINT)
    ignored = np.asarray(expected) == IGNORE_INDEX
    if values.size and ignored.any() and (values[ignored] == 0).all():
        return ("labelIds that are not trained must become 255 (ignored), not 0: 0 is the trainId of road. "
                + LABELS_HINT)
    if values.size and np.array_equal(values.astype(np.int64), np.asarray(case.args[0]).astype(np.int64)):
        return "the labelIds came back unchanged; convert them. " + LABELS_HINT
    return LABELS_HINT


def check_label_ids_to_train_ids(my_label_ids_to_train_ids: Callable[[np.ndarray], np.ndarray]) -> None:
    """Check ``my_label_ids_to_train_ids(label_ids)`` on 7 arrays of labelIds.

    >>> from torchvision.datasets import Cityscapes
    >>> def my_label_ids_to_train_ids(label_ids):
    ...     table = np.full(256, 255, dtype=np.uint8)
    ...     for c in Cityscapes.classes:
    ...         if c.id >= 0 and 0 <= c.train_id <= 18:
    ...             table[c.id] = c.train_id
    ...     return table[np.asarray(label_ids)]
    >>> check_label_ids_to_train_ids(my_label_ids_to_train_ids)
    ✓ my_label_ids_to_train_ids matches pspnet_edu.data.labels.label_ids_to_train_ids on 7 cases
    """
    check_cases(my_label_ids_to_train_ids, label_ids_to_train_ids, _LABEL_CASES, hide=LABEL_IDS_TO_TRAIN_IDS_HIDDEN,
                hint=_labels_diagnose)
