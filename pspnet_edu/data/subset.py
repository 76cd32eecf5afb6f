"""A small, resized, deterministic copy of real Cityscapes for CPU training.

Full Cityscapes is 2975 + 500 images of 1024x2048: far too much for a 2-core CPU. This
builds a subset in the same layout: the first, evenly spaced ``per_city`` frames of every
city (sorted by name, so the choice is the same on every machine), images resized bilinearly
and labels by nearest neighbour (a label is a category, not a quantity to interpolate),
written atomically with a manifest (source, options, sha256 of every file). The source is
only read, never modified; running the builder twice gives byte-identical files.

Taught in notebooks/06_cityscapes_data.ipynb; used by notebook 10 (real Cityscapes).

Deviation: ``*_gtFine_polygons.json`` files are not copied (their coordinates would need
rescaling); every pixel-wise file (labelIds, color, instanceIds) is.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from pspnet_edu.data.cityscapes import HOW_TO_GET_DATA, IMAGE_SUFFIX, LABEL_SUFFIX, eight_bit, label_path_for
from pspnet_edu.data.manifest import check_output_name, publish_atomically, save_png, write_manifest

SUBSET_VERSION = 1
# No side of a subset may exceed this: twice Cityscapes' 2048-pixel width. A subset only shrinks,
# so this bound refuses absurd sizes (99999999x99999999) at once, before the source is read.
MAX_SUBSET_SIDE = 4096
# Pixel-wise label files copied next to each labelIds file when the source has them.
EXTRA_LABEL_SUFFIXES = ("_gtFine_color.png", "_gtFine_instanceIds.png")


def evenly_spaced(count: int, wanted: int) -> list[int]:
    """``wanted`` indices spread evenly over ``range(count)`` (all of them if wanted >= count).

    >>> evenly_spaced(10, 3)
    [0, 4, 9]
    >>> evenly_spaced(2, 5)
    [0, 1]
    """
    if wanted >= count:
        return list(range(count))
    return sorted({int(i) for i in np.linspace(0, count - 1, wanted).round()})


def nearest_indices(source: int, target: int) -> np.ndarray:
    """Source index of each target pixel for a nearest-neighbour resize (pixel centres aligned).

    >>> nearest_indices(4, 2).tolist()
    [1, 3]
    """
    return np.minimum(((np.arange(target) + 0.5) * source / target).astype(np.int64), source - 1)


def _read(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"cannot decode {path}: {error}. The file is corrupt or truncated: "
                         "extract it again from the Cityscapes zip") from error


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image, from its header only (no pixels decoded)."""
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot decode {path}: {error}. The file is corrupt or truncated: "
                         "extract it again from the Cityscapes zip") from error


def check_subset_size(size: tuple[int, int], sources: list[Path]) -> None:
    """Raise a ValueError unless ``size`` = (H, W) is at most the size of every source image.

    A subset is a *smaller* copy: upsampling invents no information and only costs memory.
    Only the headers are read.
    """
    height, width = size
    sizes = {path: _image_size(path) for path in sources}  # (H, W) of each source image
    too_big = [path for path, (h, w) in sizes.items() if height > h or width > w]
    if too_big:
        max_h, max_w = min(h for h, _ in sizes.values()), min(w for _, w in sizes.values())  # fits every source
        example_h, example_w = sizes[too_big[0]]
        raise ValueError(f"size {height}x{width} is larger than the source images ({too_big[0].name} is "
                         f"{example_h}x{example_w}); a subset only shrinks: pass a size of at most "
                         f"{max_h}x{max_w}, e.g. {max(max_h // 4, 8)}x{max(max_w // 4, 8)}")


def _resize_image(path: Path, size_wh: tuple[int, int]) -> Image.Image:
    """Bilinear (antialiased when shrinking), as the course resizes images."""
    return eight_bit(_read(path), path).convert("RGB").resize(size_wh, Image.Resampling.BILINEAR)


def _resize_label(path: Path, size_wh: tuple[int, int]) -> np.ndarray:
    """Nearest neighbour by indexing: the same pixels for labelIds, color and instanceIds files."""
    values = np.asarray(_read(path))
    rows, cols = nearest_indices(values.shape[0], size_wh[1]), nearest_indices(values.shape[1], size_wh[0])
    resized = values[rows][:, cols]
    if resized.dtype.kind in "iu" and resized.dtype.itemsize > 2:  # 16-bit instanceIds may open as int32
        if resized.min() < 0 or resized.max() > np.iinfo(np.uint16).max:
            raise ValueError(f"{path} holds values outside 0..65535; Cityscapes instanceIds are 16-bit")
        resized = resized.astype(np.uint16)
    return resized


def build_cityscapes_subset(root: str | Path, out: str | Path, per_city: int, size: tuple[int, int],
                            splits: tuple[str, ...] = ("train", "val")) -> Path:
    """Write ``per_city`` frames of every city of ``splits``, resized to ``size`` = (H, W), into ``out``.

    Splits absent from ``root`` are skipped with a warning. ``size`` may not exceed any chosen
    source image (a subset only shrinks; checked from the headers before any work). An existing
    ``out`` is replaced only if it is an earlier subset holding nothing but the files of its
    manifest (:func:`pspnet_edu.data.manifest.publish_atomically`). Returns ``out``.
    """
    root, out = Path(root), check_output_name(out)
    height, width = (int(s) for s in size)
    if per_city < 1:
        raise ValueError(f"per_city must be at least 1, got {per_city}")
    if height < 8 or width < 8:
        raise ValueError(f"size {height}x{width} is too small; use e.g. 256x512")
    if max(height, width) > MAX_SUBSET_SIDE:
        raise ValueError(f"size {height}x{width} is far larger than any Cityscapes image (1024x2048, and a subset "
                         f"only shrinks; at most {MAX_SUBSET_SIDE} a side); use e.g. 256x512")
    if not (root / "leftImg8bit").is_dir():
        raise FileNotFoundError(f"{root} is not a Cityscapes folder (no leftImg8bit/ inside): {HOW_TO_GET_DATA}")
    resolved_out, resolved_root = out.resolve(), root.resolve()
    if resolved_out == resolved_root or resolved_root in resolved_out.parents:
        raise ValueError(f"output {out} lies inside the source {root}, which is never modified; "
                         "choose an output folder outside it, e.g. data/cityscapes_subset")

    plan: list[tuple[str, Path, Path]] = []  # (split, image, label)
    for split in splits:
        image_dir, label_dir = root / "leftImg8bit" / split, root / "gtFine" / split
        if not image_dir.is_dir():
            warnings.warn(f"split {split!r} is not in {root} (no {image_dir}); skipped", stacklevel=2)
            continue
        for city in sorted(p for p in image_dir.iterdir() if p.is_dir()):
            images = sorted(city.glob(f"*{IMAGE_SUFFIX}"))
            for index in evenly_spaced(len(images), per_city):
                label = label_path_for(images[index], label_dir)
                if not label.is_file():
                    raise FileNotFoundError(f"{images[index]} has no label {label}; unzip gtFine_trainvaltest.zip "
                                            f"into {root} next to leftImg8bit/")
                plan.append((split, images[index], label))
    if not plan:
        raise ValueError(f"no images found in {root} for splits {list(splits)}; {HOW_TO_GET_DATA}")
    check_subset_size((height, width), [image for _, image, _ in plan])  # before any pixel is decoded

    def build(tmp: Path) -> None:
        files = []
        for split, image_path, label_path in plan:
            city = image_path.parent.name
            targets = [(image_path, tmp / "leftImg8bit" / split / city / image_path.name, _resize_image),
                       (label_path, tmp / "gtFine" / split / city / label_path.name, _resize_label)]
            for suffix in EXTRA_LABEL_SUFFIXES:
                extra = label_path.with_name(label_path.name.replace(LABEL_SUFFIX, suffix))
                if extra.is_file():
                    targets.append((extra, tmp / "gtFine" / split / city / extra.name, _resize_label))
            for source, target, resize in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
                save_png(resize(source, (width, height)), target)
                files.append(target.relative_to(tmp).as_posix())
        options = {"per_city": per_city, "size": [height, width], "splits": list(splits)}
        write_manifest(tmp, "cityscapes_subset", SUBSET_VERSION, options, files,
                       extra={"source": str(resolved_root),
                              "selection": "evenly spaced frames of each city, sorted by file name"})

    return publish_atomically(build, out, "cityscapes_subset")
