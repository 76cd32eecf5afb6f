"""Tests for pspnet_edu/checks/data.py (the self-check of notebook 06)."""

from __future__ import annotations

import numpy as np
import pytest
from torchvision.datasets import Cityscapes

from pspnet_edu.checks.data import _LABEL_CASES, check_label_ids_to_train_ids


# torchvision's own train_id column: 255 for untrained classes but -1 for the licence plate.
TORCHVISION_TRAIN_ID = {c.id: c.train_id for c in Cityscapes.classes}


def table_from_torchvision(fill: int = 255) -> np.ndarray:
    table = np.full(256, fill, dtype=np.int64)
    for c in Cityscapes.classes:
        if c.id >= 0 and 0 <= c.train_id <= 18:
            table[c.id] = c.train_id
    return table


def right(label_ids):
    return table_from_torchvision()[np.asarray(label_ids).astype(np.int64)]


def test_cases_against_a_per_pixel_loop():
    # The reference, via the check's cases, against an independent loop over torchvision's table.
    by_id = {c.id: c.train_id for c in Cityscapes.classes}
    for case in _LABEL_CASES:
        ids = case.args[0]
        loop = np.array([by_id[int(i)] if 0 <= by_id.get(int(i), 255) <= 18 else 255 for i in ids.reshape(-1)],
                        dtype=np.int64).reshape(ids.shape)
        assert np.array_equal(loop, right(ids))


def test_right_answer_passes(capsys):
    def my_label_ids_to_train_ids(label_ids):
        return right(label_ids)

    check_label_ids_to_train_ids(my_label_ids_to_train_ids)
    assert capsys.readouterr().out == ("✓ my_label_ids_to_train_ids matches "
                                       "pspnet_edu.data.labels.label_ids_to_train_ids on 7 cases\n")


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda ids: table_from_torchvision(fill=0)[np.asarray(ids).astype(np.int64)], "must become 255"),
        (lambda ids: np.vectorize(TORCHVISION_TRAIN_ID.get, otypes=[np.int64])(ids), "train_id -1"),  # a dict lookup
        (lambda ids: np.asarray(ids).copy(), "unchanged"),
        (lambda ids: right(ids).reshape(-1), "same shape"),
    ],
)
def test_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_label_ids_to_train_ids(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value)
