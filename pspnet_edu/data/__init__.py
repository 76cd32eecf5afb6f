"""Data for the course: Cityscapes-layout datasets, labels, joint transforms, Synthcity.

Taught in notebooks/06_cityscapes_data.ipynb. Modules: ``labels`` (the label table),
``cityscapes`` (the dataset), ``transforms`` (joint augmentation), ``synthetic`` (the embedded
Synthcity set), ``subset`` (a small copy of real Cityscapes), ``visualize`` (colours, overlays).
"""

from pspnet_edu.data.cityscapes import CityscapesSegmentation, dataset_fingerprint
from pspnet_edu.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, PALETTE, label_ids_to_train_ids
from pspnet_edu.data.synthetic import (
    CONTEXT_CLASSES,
    CONTEXT_PAIRS,
    THIN_CLASSES,
    default_synthetic_root,
    ensure_synthetic,
    generate_synthetic,
)
from pspnet_edu.data.transforms import EvalTransforms, TrainTransforms, denormalize

__all__ = [
    "CLASS_NAMES", "CONTEXT_CLASSES", "CONTEXT_PAIRS", "CityscapesSegmentation", "EvalTransforms",
    "IGNORE_INDEX", "NUM_CLASSES", "PALETTE", "THIN_CLASSES", "TrainTransforms", "dataset_fingerprint", "default_synthetic_root", "denormalize",
    "ensure_synthetic", "generate_synthetic", "label_ids_to_train_ids",
]
