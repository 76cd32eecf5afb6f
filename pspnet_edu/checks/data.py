"""Self-checks for notebooks/06_cityscapes_data.ipynb.

- :func:`check_label_ids_to_train_ids`: ``my_label_ids_to_train_ids(label_ids)``, a numpy
  array of Cityscapes labelIds (any shape, -1 allowed) -> the array of trainIds (19 trained
  classes 0..18, everything else 255), against
  :func:`pspnet_edu.data.labels.label_ids_to_train_ids`.
- :func:`check_joint_augment`: ``my_joint_augment(image, mask, crop_size, scale)``, the
  training augmentation of the PSPNet recipe written by hand (random scale, horizontal flip,
  random crop padded with the mean colour and 255), against
  :class:`pspnet_edu.data.transforms.TrainTransforms` (``normalize=False``) from the same torch
  seed, so the learner must draw the same random numbers in the same order (and no others: torch's
  generator must end where TrainTransforms leaves it); also two invariants, checked first because
  they name a mistake where a comparison only says "differs": every mask value comes from the input
  mask or is 255, and a mask painted into the image stays on its colours. A wrong crop is explained
  by a second run from the same seed (another generator than torch's), its padding values, or the
  known slip (``AUGMENT_SLIPS``) that reproduces it; else by the contract.

While the learner's function runs, that function and the package's lookup table
``LABEL_TO_TRAIN_TABLE`` (its whole answer) and its builder ``_lookup_table`` are hidden (:func:`pspnet_edu.checks._core.hidden`);
torchvision's ``Cityscapes.classes``, the table the exercise reads, is not. For the
augmentation, the package's transforms and torchvision's random transforms that do a whole step
(``v2.RandomCrop``, ``v2.RandomHorizontalFlip``, ``v2.RandomResize``, ``v2.RandomResizedCrop``, and
the first API's ``RandomCrop``, ``RandomHorizontalFlip``, ``RandomResizedCrop``) are hidden; the
kernels (``F.interpolate``, ``torchvision.transforms.v2.functional``) are the bricks and stay
available.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision import transforms as transforms_v1
from torchvision.transforms import v2

from pspnet_edu.checks._core import (
    Case,
    check_cases,
    differences,
    hidden,
    learner_code,
    learner_name,
    passed,
    refuse_reference,
    require_callable,
    short_repr,
)
from pspnet_edu.data import transforms
from pspnet_edu.data import labels
from pspnet_edu.data.labels import CITYSCAPES_CLASSES, IGNORE_INDEX, label_ids_to_train_ids

# What check_label_ids_to_train_ids hides while the learner's code runs.
LABEL_IDS_TO_TRAIN_IDS_HIDDEN = (label_ids_to_train_ids, labels.LABEL_TO_TRAIN_TABLE, labels._lookup_table)

LABELS_HINT = ("the labelId of each of the 19 trained classes (the rows of torchvision.datasets.Cityscapes.classes "
               "with 0 <= train_id <= 18) becomes its train_id, every other labelId (-1, the licence plate, "
               "included) becomes 255 (IGNORE_INDEX); convert the whole array at once and keep its shape.")


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


# ------------------------------------------------------------------ joint augmentation

# What check_joint_augment hides while the learner's code runs.
JOINT_AUGMENT_HIDDEN = (transforms.TrainTransforms, transforms.RandomScale, v2.RandomCrop, v2.RandomHorizontalFlip,
                        v2.RandomResize, v2.RandomResizedCrop, transforms_v1.RandomCrop,
                        transforms_v1.RandomHorizontalFlip, transforms_v1.RandomResizedCrop)

AUGMENT_CONTRACT = (
    "from torch's global generator, in this order and nothing else: (1) one uniform number, the scale factor s in "
    "[low, high); each side becomes side * s rounded to the nearest integer (at least 1); the image resized "
    "bilinearly with antialiasing, the mask by nearest neighbour; (2) one uniform number u in [0, 1): image AND mask "
    "mirrored left-right when u < 0.5; (3) each side shorter than the crop padded by (crop - side) at BOTH ends "
    "(image: IMAGENET_MEAN per channel, mask: 255), then the window's top, a torch.randint over 0..P_h - crop_h, "
    "drawn only when the padded height P_h exceeds crop_h (else 0), then its left the same way.")

# Labels of the check's masks: spread out, so that a bilinear mask makes values that are no label.
_LABELS = (0, 5, 11, 18)
_VOID = 255


def _painted(seed: int, size: tuple[int, int], void: bool, dtype: torch.dtype = torch.int64) -> tuple[Tensor, Tensor]:
    """A blocky trainId mask (H, W) of ``dtype`` and the image (3, H, W) painted from it, one colour per label."""
    generator = torch.Generator().manual_seed(seed)
    height, width = size
    blocks = torch.randint(0, len(_LABELS), (1, 1, (height + 5) // 6, (width + 5) // 6), generator=generator)
    index = F.interpolate(blocks.float(), size=size, mode="nearest")[0, 0].long()  # (H, W), blocks of ~6 px
    mask = torch.tensor(_LABELS)[index].to(dtype)
    if void:
        mask[-2:] = _VOID  # the ego vehicle's bonnet, say
    image = _PALETTE[_label_slot(mask)].permute(2, 0, 1)  # (3, H, W): each label in its own colour
    return image.contiguous(), mask


def _label_slot(mask: Tensor) -> Tensor:
    """The index of each pixel's label in ``_LABELS + (255,)``: the row of ``_PALETTE`` that paints it."""
    slots = torch.zeros(mask.shape, dtype=torch.long)  # an index whatever the mask's dtype (uint8 = a bool mask)
    for slot, label in enumerate(_LABELS + (_VOID,)):
        slots[mask == label] = slot
    return slots


_PALETTE = torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.8, 0.3], [0.2, 0.3, 0.9], [0.7, 0.7, 0.1], [0.05, 0.05, 0.05]])


# (what the case is about, image size, crop (H, W), scale, void rows, torch seed, the mask's dtype)
_AugmentCase = tuple[str, tuple[int, int], tuple[int, int], tuple[float, float], bool, int, torch.dtype]
_AUGMENT_CASES: tuple[_AugmentCase, ...] = (
    ("a crop smaller than the image, the paper's scales", (36, 48), (24, 32), (0.5, 2.0), False, 0, torch.int64),
    ("the same image and crop, another seed", (36, 48), (24, 32), (0.5, 2.0), False, 1, torch.int64),
    ("a crop LARGER than the image: padded on both sides", (20, 24), (32, 40), (0.5, 1.0), False, 2, torch.int64),
    ("a crop larger than the image, another seed", (20, 24), (32, 40), (0.5, 1.0), True, 5, torch.int64),
    ("a crop as tall as the image (scale 1): no draw for the top, only for the left", (24, 40), (24, 16), (1.0, 1.0),
     False, 3, torch.int64),
    ("magnified 1.5-2x, void pixels (255) in the mask", (30, 30), (28, 20), (1.5, 2.0), True, 4, torch.int64),
    ("taller than the crop, narrower than it: one side cropped, the other padded", (40, 16), (24, 28), (0.8, 1.2),
     True, 7, torch.int64),
    ("shrunk 0.5-0.7x (bilinear with antialias)", (48, 40), (16, 16), (0.5, 0.7), False, 8, torch.int64),
    ("a uint8 mask, as decoded from a PNG, padded: it stays uint8", (20, 30), (28, 24), (0.8, 1.2), True, 9,
     torch.uint8),
)


def _augment(image: Tensor, mask: Tensor, crop_size: tuple[int, int], scale: tuple[float, float],
             slip: str | None = None) -> tuple[Tensor, Tensor]:
    """TrainTransforms(normalize=False) by hand, or with one known ``slip`` (to name the learner's)."""
    early_flip = _flip_draw(slip) if slip == "flip first" else None
    image, mask = _rescale(image, mask, scale, slip)
    if slip == "independent flips":
        image = image.flip(-1) if _flip_draw(slip) else image
        mask = mask.flip(-1) if _flip_draw(slip) else mask
    elif slip != "crop before flip":
        image, mask = _mirror(image, mask, _flip_draw(slip) if early_flip is None else early_flip, slip)
    image, mask = _padded_crop(image, mask, crop_size, slip)
    if slip == "crop before flip":
        image, mask = _mirror(image, mask, _flip_draw(slip), slip)
    return image, mask


def _flip_draw(slip: str | None) -> bool:
    """The flip decision: one torch.rand(1), flip below 0.5 (torchvision's rule)."""
    draw = torch.rand(1)
    return bool(draw >= 0.5) if slip == "flip if >= 0.5" else bool(draw < 0.5)


def _mirror(image: Tensor, mask: Tensor, flip: bool, slip: str | None) -> tuple[Tensor, Tensor]:
    dim = -2 if slip == "vertical flip" else -1
    return (image.flip(dim), mask.flip(dim)) if flip else (image, mask)


def _rescale(image: Tensor, mask: Tensor, scale: tuple[float, float], slip: str | None) -> tuple[Tensor, Tensor]:
    """One factor for both; the image bilinear with antialias, the mask nearest (legacy ``"nearest"``)."""
    factor = float(torch.empty(1).uniform_(scale[0], scale[1]))
    mask_mode = "nearest-exact" if slip == "nearest-exact" else "nearest"
    if slip == "scale_factor":  # F.interpolate floors the size and maps coordinates with the factor itself
        resized = F.interpolate(image[None], scale_factor=factor, mode="bilinear", antialias=True)[0]
        labels = F.interpolate(mask[None, None].float(), scale_factor=factor, mode=mask_mode)[0, 0]
        return resized, labels.to(mask.dtype)
    to_int = int if slip == "truncated size" else round
    size = (max(1, to_int(image.shape[-2] * factor)), max(1, to_int(image.shape[-1] * factor)))
    resized = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False,
                            antialias=slip != "no antialias")[0]
    labels = F.interpolate(mask[None, None].float(), size=size, mode=mask_mode)[0, 0]
    return resized, labels.to(mask.dtype)


def _padded_crop(image: Tensor, mask: Tensor, crop_size: tuple[int, int], slip: str | None) -> tuple[Tensor, Tensor]:
    """Pad each short side by (crop - side) at both ends (mean colour, 255), then crop a random window."""
    size, crop = tuple(mask.shape), tuple(crop_size)
    pads = tuple(max(0, c - n) for c, n in zip(crop, size))
    if slip == "pad to the crop only":
        before, canvas = (0, 0), tuple(max(n, c) for n, c in zip(size, crop))
    elif slip == "centred padding":
        before, canvas = tuple(p // 2 for p in pads), tuple(max(n, c) for n, c in zip(size, crop))
    else:
        before, canvas = pads, tuple(n + 2 * p for n, p in zip(size, pads))
    padded_image = torch.tensor(transforms.IMAGENET_MEAN, dtype=image.dtype).view(3, 1, 1).repeat(1, *canvas)
    padded_image[:, before[0]:before[0] + size[0], before[1]:before[1] + size[1]] = image
    padded_mask = torch.full(canvas, _VOID, dtype=mask.dtype)
    padded_mask[before[0]:before[0] + size[0], before[1]:before[1] + size[1]] = mask
    top, left = _window(canvas, crop, pads, slip)
    return (padded_image[:, top:top + crop[0], left:left + crop[1]],
            padded_mask[top:top + crop[0], left:left + crop[1]])


def _window(canvas: tuple[int, ...], crop: tuple[int, ...], pads: tuple[int, ...], slip: str | None) -> tuple[int, int]:
    """The crop window's top-left corner: one torch.randint per side whose padded length exceeds the crop."""
    corner = [0, 0]
    for side in ((1, 0) if slip == "left first" else (0, 1)):
        span = canvas[side] - crop[side]  # the window can start at 0..span
        if span > 0 or slip == "always draw":
            corner[side] = int(torch.randint(0, span if slip == "offset range one short" else span + 1, size=()))
        if slip == "image at the offset" and pads[side] > 0:
            corner[side] = span - corner[side]  # the drawn number placed the image, not the window
    return corner[0], corner[1]


AUGMENT_SLIPS = {  # the slips that show in one case only come first
    "always draw": ("an offset was drawn where the padded side equals the crop (randint(0, 1)): torchvision draws "
                    "only when the padded side is LONGER than the crop, else the offset is 0 and no number is used."),
    "offset range one short": ("the crop offset was drawn from one position too few: a window of length c slides "
                               "over a padded side of length P at P - c + 1 positions, 0 to P - c INCLUSIVE, and "
                               "torch.randint's upper bound is exclusive."),
    "image at the offset": ("the drawn number placed the image inside the crop; in the contract it is the top-left "
                            "corner of the crop WINDOW in the padded canvas (the image padded by d = crop - side at "
                            "both ends), so a number t puts the image d - t pixels from the crop's edge."),
    "independent flips": "image and mask were flipped by two separate draws: one torch.rand(1) decides for both.",
    "flip first": "the flip was drawn before the scale: the scale factor is the FIRST draw, the flip the second.",
    "crop before flip": "the crop offsets were drawn before the flip: flip first, then pad and crop.",
    "flip if >= 0.5": "flip when the uniform number is below 0.5 (torchvision's rule), not when it is >= 0.5.",
    "vertical flip": ("the flip mirrored top and bottom; the training flip is left-right, along the width: the LAST "
                      "dimension of both the (3, H, W) image and the (H, W) mask (a street upside down is no street)."),
    "left first": "the left offset was drawn before the top one: top first (the height), then left.",
    "pad to the crop only": ("the image was padded only up to the crop size (at the bottom/right): torchvision pads "
                             "diff = crop - size on BOTH sides, so the image lands anywhere in the crop."),
    "centred padding": ("the image was centred in the crop (half the shortfall at each end), so no window was drawn "
                        "for that side: torchvision's RandomCrop(pad_if_needed=True) pads the WHOLE shortfall "
                        "diff = crop - size at both ends and then draws the window, so the image lands anywhere in "
                        "the crop (see RandomCrop.make_params in torchvision/transforms/v2/_geometry.py)."),
    "truncated size": ("the scaled size was truncated (int() or floor): each side is its length times the factor "
                       "rounded to the NEAREST integer (at least 1); truncating loses a pixel about half of the time, "
                       "and with it the position of every pixel after it."),
    "scale_factor": ("the image was resized by a scale factor, not to a size: F.interpolate(scale_factor=s) floors "
                     "the size and maps coordinates with s itself; compute the size (each side times s, rounded to "
                     "the nearest integer) and resize to exactly that size, as torchvision does."),
    "nearest-exact": ("the mask was resized with 'nearest-exact'; torchvision's NEAREST, used for masks, is PyTorch's "
                      "legacy 'nearest': output pixel i reads input pixel floor(i * n / n') (n, n': the side's length "
                      "before and after)."),
    "no antialias": ("the image was resized without antialiasing: torchvision resizes tensors bilinearly WITH "
                     "antialias, which matters when shrinking (each output pixel averages every input pixel it "
                     "covers, not just the nearest 2x2)."),
}


def _structure_problem(got: Any, image: Tensor, mask: Tensor, crop_size: tuple[int, int]) -> str | None:
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(isinstance(t, Tensor) for t in got)):
        return f"return (image, mask), two tensors; got {short_repr(got)}"
    out_image, out_mask = got
    if tuple(out_image.shape) != (3, *crop_size) or tuple(out_mask.shape) != tuple(crop_size):
        message = (f"expected an image (3, {crop_size[0]}, {crop_size[1]}) and a mask {tuple(crop_size)} (the crop "
                   f"size), got {tuple(out_image.shape)} and {tuple(out_mask.shape)}")
        sides = [tuple(out_image.shape[-2:]), tuple(out_mask.shape[-2:])]
        if any(len(s) == 2 and (s[0] < crop_size[0] or s[1] < crop_size[1]) for s in sides):
            message += (": where a side of the scaled image is shorter than the crop, pad it (the image with the "
                        "mean colour, the mask with 255); a full crop always comes out, a small image is never "
                        "dropped or returned smaller")
        return message
    if out_mask.dtype != mask.dtype:
        return (f"the mask came back as {out_mask.dtype}; keep its dtype ({mask.dtype}): labels are integers "
                "(resize a float copy by nearest neighbour and convert back, or use an integer-safe kernel)")
    if not out_image.is_floating_point():
        return f"the image came back as {out_image.dtype}; keep it a float image in [0, 1]"
    return None


def _values_problem(out_mask: Tensor, mask: Tensor) -> str | None:
    allowed = set(mask.unique().tolist()) | {_VOID}
    foreign = sorted(set(out_mask.unique().tolist()) - allowed)
    if foreign:
        return (f"the mask holds {foreign[:5]}, which are neither labels of the input mask {sorted(allowed - {_VOID})} "
                "nor 255: labels are names, not quantities, and interpolating between two classes invents a third "
                "(halfway between 0 and 18 is 9); resize the mask by NEAREST neighbour, never bilinearly")
    return None


def _alignment_problem(out_image: Tensor, out_mask: Tensor) -> str | None:
    """Where the image shows one painted colour exactly, the mask must hold that colour's label."""
    slots = _label_slot(out_mask)  # the palette row each mask pixel's label paints with
    pure = (out_image.permute(1, 2, 0)[:, :, None, :] - _PALETTE[None, None]).abs().amax(dim=-1) < 1e-4  # (H, W, 5)
    shown = pure.any(dim=-1) & (out_mask != _VOID)
    if int(shown.sum()) < 20:
        return None  # too few pure pixels to judge (e.g. a crop of mostly padding)
    agree = pure.gather(-1, slots[..., None].clamp(max=len(_LABELS)))[..., 0]
    wrong = float((shown & ~agree).sum()) / float(shown.sum())
    if wrong > 0.05:
        return (f"the mask is no longer on the image: the check paints each label in its own colour, and on "
                f"{wrong:.0%} of the pixels the mask's label is not the colour under it. Image and mask must get the "
                "SAME scale, the SAME flip (one draw, along the width: the last dimension of the (3, H, W) image "
                "and of the (H, W) mask alike) and the SAME crop window")
    return None


def _padding_problem(expected: tuple[Tensor, Tensor], got: tuple[Tensor, Tensor]) -> str | None:
    (want_image, want_mask), (got_image, got_mask) = expected, got
    mask_off = want_mask != got_mask
    if bool(mask_off.any()) and bool((want_mask[mask_off] == _VOID).all()) and bool((got_mask[mask_off] == 0).all()):
        return ("the mask's padding holds 0, a real class (road): pad the mask with 255 (IGNORE_INDEX), so that the "
                "loss ignores the padded pixels")
    image_off = (want_image - got_image).abs().amax(dim=0) > 1e-4
    mean = torch.tensor(transforms.IMAGENET_MEAN).view(3, 1)
    if bool(image_off.any()) and bool(((want_image[:, image_off] - mean).abs() < 1e-6).all()):
        return ("the image's padding is not the mean colour: pad the image with IMAGENET_MEAN, one value per channel, "
                "so that it becomes 0 after the normalisation")
    return None


def _slip(image: Tensor, mask: Tensor, crop_size: tuple[int, int], scale: tuple[float, float], seed: int,
          got: tuple[Tensor, Tensor]) -> str | None:
    """The known slip whose output, from the same seed, equals the learner's."""
    for slip in AUGMENT_SLIPS:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            slipped = _augment(image, mask, crop_size, scale, slip)
        if slipped[0].shape == got[0].shape and slipped[1].shape == got[1].shape and torch.equal(slipped[1], got[1]) \
                and torch.allclose(slipped[0], got[0], atol=1e-5):
            return slip
    return None


def _same(a: tuple[Tensor, Tensor], b: Any) -> bool:
    """Whether the learner's second answer ``b`` is the first one ``a`` again."""
    return (isinstance(b, (tuple, list)) and len(b) == 2 and all(isinstance(t, Tensor) for t in b)
            and b[0].shape == a[0].shape and b[1].shape == a[1].shape
            and torch.equal(b[0].detach(), a[0]) and torch.equal(b[1].detach(), a[1]))


UNSEEDED = ("two runs from the same torch.manual_seed gave different results: draw every random number from torch's "
            "global generator (torch.rand, torch.randint, Tensor.uniform_), not from Python's random or numpy's, "
            "which the seed does not reach")
DRAWS = ("your function took a different amount of random numbers from torch's global generator than "
         "TrainTransforms: one for the scale, one for the flip, one per side whose padded length exceeds the crop, "
         "and nothing else")


def check_joint_augment(my_joint_augment: Callable[..., tuple[Tensor, Tensor]]) -> None:
    """Check ``my_joint_augment(image, mask, crop_size, scale)`` against ``TrainTransforms`` on 9 seeded cases.

    The output must match, and the learner's function must leave torch's generator where
    TrainTransforms leaves it (the same random numbers used: the next sample gets the same ones).

    >>> def my_joint_augment(image, mask, crop_size, scale=(0.5, 2.0)):
    ...     return _augment(image, mask, crop_size, scale)
    >>> check_joint_augment(my_joint_augment)
    ✓ my_joint_augment matches pspnet_edu.data.transforms.TrainTransforms on 9 cases
    """
    require_callable(my_joint_augment)
    name = learner_name(my_joint_augment)
    refuse_reference(my_joint_augment, JOINT_AUGMENT_HIDDEN, name)
    prepared = []
    with torch.random.fork_rng(devices=[]):  # the seeds below leave the caller's generator as it was
        for about, size, crop, scale, void, seed, dtype in _AUGMENT_CASES:  # the expected values first
            image, mask = _painted(seed, size, void, dtype)
            torch.default_generator.manual_seed(seed)
            expected = transforms.TrainTransforms(crop, scale, normalize=False)(image.clone(), mask.clone())
            prepared.append((about, image, mask, crop, scale, seed, expected, torch.get_rng_state()))
        failure = None
        with hidden(*JOINT_AUGMENT_HIDDEN) as hiding:
            for about, image, mask, crop, scale, seed, expected, state_after in prepared:
                call = (f"{name}(image {tuple(image.shape)}, mask, crop_size={crop}, scale={scale})  "
                        f"[{about}; seed {seed}]")
                torch.default_generator.manual_seed(seed)
                with learner_code(name, call, hiding):
                    got = my_joint_augment(image.clone(), mask.clone(), crop, scale)
                same_draws = torch.equal(torch.get_rng_state(), state_after)
                problem = _structure_problem(got, image, mask, crop)
                if problem is None:
                    got = (got[0].detach(), got[1].detach())
                    problem = _values_problem(got[1], mask) or _alignment_problem(*got)
                if problem is not None:
                    raise AssertionError(f"{call} gave a wrong result.\n  hint: {problem}.")
                detail = differences(expected[0], got[0], rtol=1e-5, atol=1e-5)
                detail = f"the image: {detail}" if detail else None
                if detail is None and differences(expected[1], got[1]) is not None:
                    detail = f"the mask: {differences(expected[1], got[1])}"
                if detail is None and not same_draws:
                    raise AssertionError(f"{call} gave the right crop, but {DRAWS}: the next sample of an epoch would "
                                         "get other numbers than TrainTransforms gives it.")
                if detail is not None:
                    torch.default_generator.manual_seed(seed)
                    with learner_code(name, call, hiding):
                        again = my_joint_augment(image.clone(), mask.clone(), crop, scale)
                    failure = call, image, mask, crop, scale, seed, expected, got, detail, same_draws, _same(got, again)
                    break
        if failure is not None:  # diagnosed after the hidden block: the slips use torchvision's kernels
            call, image, mask, crop, scale, seed, expected, got, detail, same_draws, repeatable = failure
            raise AssertionError(f"{call} gave a wrong result.\n  difference: {detail}\n  hint: "
                                 + _diagnosis(image, mask, crop, scale, seed, expected, got, same_draws, repeatable))
    passed(name, "pspnet_edu.data.transforms.TrainTransforms", len(_AUGMENT_CASES))


def _diagnosis(image: Tensor, mask: Tensor, crop: tuple[int, int], scale: tuple[float, float], seed: int,
               expected: tuple[Tensor, Tensor], got: tuple[Tensor, Tensor], same_draws: bool, repeatable: bool) -> str:
    """The hint for a wrong crop: the most specific known cause, else the contract."""
    if not repeatable:
        return UNSEEDED + "."
    problem = _padding_problem(expected, got)
    if problem:
        return problem + "."
    slip = _slip(image, mask, crop, scale, seed, got)
    if slip:
        return AUGMENT_SLIPS[slip]
    if not same_draws:
        return f"{DRAWS}. The contract, {AUGMENT_CONTRACT}"
    return f"this differs from TrainTransforms. The contract, {AUGMENT_CONTRACT}"
