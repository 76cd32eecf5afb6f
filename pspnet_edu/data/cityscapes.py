"""Reading Cityscapes (or a subset of it, or Synthcity) as (image, trainId mask) pairs.

The official layout is ``leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png``
with labels in ``gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png``. The
labelIds are converted to the 19 trainIds (255 = ignore) with one table lookup
(:mod:`pspnet_edu.data.labels`). torchvision's ``datasets.Cityscapes`` reads the same
layout; this class adds what a course needs: trainIds instead of labelIds, joint transforms,
and errors that name the file and say how to fix it.

Files are listed (and every image checked for its label) when the dataset is built, and
decoded only in ``__getitem__``, so that building the dataset stays fast.

Taught in notebooks/06_cityscapes_data.ipynb.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from pspnet_edu.data.labels import check_label_file, check_label_set, label_ids_to_train_ids, values_present
from pspnet_edu.data.manifest import MANIFEST_NAME
from pspnet_edu.data.transforms import EvalTransforms
from pspnet_edu.files import check_no_link_loop

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
LABEL_SAMPLE = 8  # label files decoded when a dataset is built, to tell labelIds from trainIds
KEEP_DECODED_MB = 1024  # the trainer keeps a split decoded in memory up to this size (Synthcity's: 157 + 31 MB)
HOW_TO_GET_DATA = (
    "get Cityscapes from https://www.cityscapes-dataset.com (free login; packages "
    "gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, unzipped into one folder) "
    "and make a small copy with `pspnet-edu data cityscapes-subset`, or build the synthetic "
    "set with `pspnet-edu data synthetic` (see data/README.md)"
)

JointTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# The default: ImageNet-normalised images, what every model of the package takes. Without it,
# model(dataset[i][0][None]) ran on [0, 1] images and scored mIoU 0.07 instead of 0.64, silently.
MODEL_READY: JointTransform = EvalTransforms()


def label_path_for(image_path: Path, label_dir: Path) -> Path:
    """The labelIds file that belongs to an image (same city folder, same frame name)."""
    stem = image_path.name[: -len(IMAGE_SUFFIX)]
    return label_dir / image_path.parent.name / f"{stem}{LABEL_SUFFIX}"


def read_png(path: Path, mode: str | None = None) -> np.ndarray:
    """Decode a PNG (or any image PIL reads) to a numpy array, converted to ``mode`` if given.

    ``mode=None`` keeps the stored values (a 16-bit label file stays 16-bit). A conversion
    reads every bit depth correctly (:func:`eight_bit`). A corrupt or truncated file gives a
    ValueError naming it.
    """
    try:
        with Image.open(path) as image:
            image.load()  # the pixels stay usable once the file is closed
    except (OSError, SyntaxError, ValueError) as error:  # PIL's errors for bad/truncated files
        raise ValueError(f"cannot decode {path}: {error}. The file is corrupt or truncated: "
                         "copy or extract it again (or regenerate the dataset)") from error
    if mode is not None and image.mode != mode:
        image = eight_bit(image, path).convert(mode)
    return np.array(image)


SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # "I": how older Pillows open a 16-bit PNG


def eight_bit(image: Image.Image, path: Path | str) -> Image.Image:
    """``image`` with 8 bits per channel, so that PIL's ``convert`` does not clip it.

    PIL converts a 16-bit grey image to "L" or "RGB" by clipping every value above 255, so a
    16-bit photo became a white image. Here 0..65535 is scaled to 0..255 instead. A
    floating-point image, or one with values beyond 16 bits, has no agreed range: a ValueError
    naming ``path`` asks for an 8- or 16-bit file. Other images are returned as they are
    (PIL already reads 16-bit RGB PNGs as 8-bit RGB).
    """
    if image.mode == "F":
        raise ValueError(f"{path} holds floating-point pixels; save it as an 8- or 16-bit PNG or a JPEG")
    if image.mode not in SIXTEEN_BIT_MODES:
        return image
    values = np.asarray(image).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(f"{path} holds values {values.min()}..{values.max()}, beyond 16 bits; save it as an 8- or "
                         "16-bit PNG or a JPEG")
    return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8))  # rounded: 65535 -> 255


class CityscapesSegmentation(Dataset):
    """Cityscapes-layout dataset returning ``(image, mask)``, ready for a model by default.

    ``image``: float32 tensor (3, H, W), normalised with the ImageNet statistics, as every model
    of the package expects (``transforms`` defaults to :class:`~pspnet_edu.data.transforms.
    EvalTransforms`), so ``model(dataset[i][0][None])`` is right as it stands.
    ``transforms=None``: the image as stored, in [0, 1] (to display it, or to augment it yourself).
    ``mask``: int64 tensor (H, W) of trainIds 0..18, 255 for ignore. A label file that holds no
    labelIds (values 34..254, or a trainId mask saved under the labelIds name) raises a
    ValueError naming it (:func:`pspnet_edu.data.labels.check_label_file` gives the rule); a
    split whose labels are trainId masks without 255 is refused when the dataset is built
    (:func:`pspnet_edu.data.labels.check_label_set`).
    ``transforms``: a callable ``(image, mask) -> (image, mask)`` that receives the stored image
    in [0, 1] (float32), or as stored (uint8) if it says it ``takes_uint8``, as
    :class:`pspnet_edu.data.transforms.TrainTransforms` does (it normalises too).
    ``samples``: the list of ``(image_path, label_path)`` pairs, sorted by city and name.
    ``keep_decoded``: keep every image and mask in memory once decoded (uint8, 4 bytes per
    pixel: :meth:`decoded_megabytes`), so that later epochs skip the PNG decoding; the items
    are the same. The trainer does so for splits within :data:`KEEP_DECODED_MB`.
    """

    def __init__(self, root: str | Path, split: str, transforms: JointTransform | None = MODEL_READY,
                 keep_decoded: bool = False) -> None:
        self.root, self.split, self.transforms = Path(root), split, transforms
        self._decoded: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None
        self.keep_decoded = keep_decoded
        check_no_link_loop(self.root, "dataset folder")
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset folder {self.root} does not exist: {HOW_TO_GET_DATA}")
        image_dir = self.root / "leftImg8bit" / split
        label_dir = self.root / "gtFine" / split
        if not image_dir.is_dir():
            found = sorted(p.name for p in (self.root / "leftImg8bit").glob("*") if p.is_dir())
            raise FileNotFoundError(
                f"{image_dir} does not exist, so {self.root} has no split {split!r} in the Cityscapes layout "
                f"(splits found: {found or 'none'}); pass one of those splits or a Cityscapes root: {HOW_TO_GET_DATA}"
            )
        images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            raise ValueError(f"split {split!r} has no images: no {image_dir}/<city>/*{IMAGE_SUFFIX} files; "
                             "check that the image package was unzipped into this folder")
        self.samples: list[tuple[Path, Path]] = [(path, label_path_for(path, label_dir)) for path in images]
        missing = [label for _, label in self.samples if not label.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(images)} images of split {split!r} have no label, e.g. {missing[0]} is "
                "missing; unzip gtFine_trainvaltest.zip into the same folder (or rebuild the subset)"
            )
        self._check_labels_are_label_ids()

    def _check_labels_are_label_ids(self) -> None:
        """Refuse a split whose label files are trainId masks without 255 (:func:`check_label_set`).

        Decodes a sample of LABEL_SAMPLE files spread over the split: a few hundredths of a
        second, against a training run at an mIoU near 0.
        """
        positions = np.unique(np.linspace(0, len(self.samples) - 1, min(len(self.samples), LABEL_SAMPLE)).round())
        labels = [self.samples[int(i)][1] for i in positions]
        check_label_set([values_present(read_png(path), str(path)) for path in labels], [str(p) for p in labels])

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def keep_decoded(self) -> bool:
        return self._decoded is not None

    @keep_decoded.setter
    def keep_decoded(self, keep: bool) -> None:
        if not keep:
            self._decoded = None
        elif self._decoded is None:
            self._decoded = {}

    def decoded_megabytes(self) -> float:
        """The memory the whole split takes decoded (RGB + trainIds, 4 bytes a pixel), from the first image's size."""
        with Image.open(self.samples[0][0]) as first:  # reads the header only
            width, height = first.size
        return len(self) * width * height * 4 / 2**20

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        decoded = self._decoded.get(index) if self._decoded is not None else None
        if decoded is None:
            decoded = self._decode(index)
            if self._decoded is not None:
                self._decoded[index] = decoded
        image, mask = decoded
        image_tensor = image.permute(2, 0, 1)  # (3, H, W) uint8, in the file's (H, W, 3) memory order
        if not getattr(self.transforms, "takes_uint8", False):  # [0, 1] floats, contiguous (faster to resize)
            image_tensor = image_tensor.contiguous().float().div_(255)
        mask_tensor = mask.long()  # (H, W) trainIds
        if self.transforms is not None:
            image_tensor, mask_tensor = self.transforms(image_tensor, mask_tensor)
        return image_tensor, mask_tensor

    def _decode(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored image (H, W, 3) and its trainId mask (H, W), both uint8, checked."""
        image_path, label_path = self.samples[index]
        image = read_png(image_path, "RGB")  # (H, W, 3) uint8
        label_ids = read_png(label_path)
        if label_ids.ndim != 2:
            raise ValueError(f"{label_path} has {label_ids.shape[-1]} channels; a *{LABEL_SUFFIX} file holds one "
                             "labelId per pixel (is it a *_gtFine_color.png renamed?)")
        if label_ids.shape != image.shape[:2]:
            raise ValueError(f"{label_path} is {label_ids.shape[1]}x{label_ids.shape[0]} but its image {image_path} "
                             f"is {image.shape[1]}x{image.shape[0]} (WxH); labels must match their images pixel "
                             "for pixel: resize labels with nearest neighbour or rebuild the subset")
        check_label_file(label_ids, str(label_path))  # not labelIds (a trainId mask, 34..254): say so
        train_ids = label_ids_to_train_ids(label_ids).astype(np.uint8, copy=False)  # 0..18 and 255
        return torch.from_numpy(image), torch.from_numpy(train_ids)

    def __repr__(self) -> str:
        return f"CityscapesSegmentation(root={str(self.root)!r}, split={self.split!r}, {len(self)} images)"


def dataset_fingerprint(root: str | Path) -> str:
    """A short identity of the data in ``root``: the checksum of its manifest, or of its file list.

    Generated sets (Synthcity, a Cityscapes subset) carry a manifest with the sha256 of every
    file; any other folder is identified by the names and sizes of its images and labels. A run
    records it, so that a resumed run can refuse to continue on other data.
    """
    root = Path(root)
    manifest = root / MANIFEST_NAME
    if manifest.is_file():
        return "manifest:" + hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
    digest = hashlib.sha256()
    for path in sorted((*root.glob(f"leftImg8bit/*/*/*{IMAGE_SUFFIX}"), *root.glob(f"gtFine/*/*/*{LABEL_SUFFIX}"))):
        digest.update(f"{path.relative_to(root).as_posix()}:{path.stat().st_size}\n".encode())
    return "files:" + digest.hexdigest()[:16]
