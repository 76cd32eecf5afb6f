"""How often each class occurs in a split: the pixel share of every trainId, read from the labels.

A class that covers 1 % of the labelled pixels contributes about 1 % of the cross-entropy, so
rare classes (poles, signs, the long vehicles) get few gradients. Class weights built from these
shares (:func:`pspnet_edu.loss.class_weights`) give them more. Only the label files are read
(no image is decoded, no augmentation runs), so the result is the same on every machine.

Taught in notebooks/06_cityscapes_data.ipynb (the shares) and 07_training.ipynb (the weights).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from pspnet_edu.data.cityscapes import read_png  # the dataset's own reader: same checks, same errors
from pspnet_edu.data.labels import NUM_CLASSES, label_ids_to_train_ids


def class_frequencies(label_files: Iterable[str | Path], num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """(num_classes,) float64: each trainId's share of the labelled pixels of ``label_files``.

    ``label_files`` are ``*_gtFine_labelIds.png`` files, e.g. ``[label for _, label in
    CityscapesSegmentation(root, "train").samples]``; void pixels (255) are not counted. A
    class that never occurs gets 0.

    >>> import tempfile, PIL.Image
    >>> path = Path(tempfile.mkdtemp()) / "a_gtFine_labelIds.png"
    >>> PIL.Image.fromarray(np.array([[7, 7, 7, 8], [0, 0, 0, 0]], np.uint8)).save(path)  # road x3, sidewalk, void
    >>> class_frequencies([path])[:3].tolist()
    [0.75, 0.25, 0.0]
    """
    counts = np.zeros(num_classes, dtype=np.int64)
    files = [Path(f) for f in label_files]
    if not files:
        raise ValueError("no label files given: pass the label files of a split, e.g. the dataset's .samples")
    for path in files:
        train_ids = label_ids_to_train_ids(read_png(path)).ravel()
        counts += np.bincount(train_ids[train_ids < num_classes], minlength=num_classes)[:num_classes]
    total = counts.sum()
    if total == 0:
        raise ValueError(f"the {len(files)} label files hold no labelled pixel (every pixel is void); "
                         "check that they are *_gtFine_labelIds.png files of a Cityscapes-layout split")
    return torch.from_numpy(counts / total)
