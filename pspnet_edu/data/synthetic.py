"""Synthcity: procedural street scenes in the Cityscapes format, built so that context matters.

Real Cityscapes needs a login and may not be redistributed, so the course ships a generator
instead. Its scenes are drawn with numpy from a seed (byte-identical PNGs every time) and
written in exactly the Cityscapes layout and naming with real labelIds, so everything that
reads Cityscapes (this package, ``torchvision.datasets.Cityscapes``) reads Synthcity.

The set is a controlled experiment for the paper's central claim (Zhao et al. 2017, Sec. 3.1
and Fig. 2): a dilated FCN labels each pixel from what its *effective* receptive field sees,
and fails where only the whole scene tells the answer; PSPNet's pyramid pooling hands every
pixel a summary of the whole image and fixes it. Two pairs of classes are drawn by the very
same code, so they are identical locally (same colours, texture, shapes, sizes, positions)
and only the sky, far above them, says which is which:

- ``bus`` / ``train`` ("confusing categories"): the long vehicles on the road are trains when
  patches of orange sunset glow are scattered over the sky (dusk), buses otherwise;
- ``vegetation`` / ``terrain`` (the same kind of failure on "stuff"): every sky has large white
  clouds; the green ground beside the sidewalks is vegetation when they cover more than half of
  the visible sky ("cloudy"), terrain when they cover less ("clear").

No patch of sky near an object is sure to tell either cue (the glow may be elsewhere; a window
of sky is a poor sample of the clouds' share), while the whole sky's average does: a pixel must
pool the whole scene to be sure, which is what the PPM's 1x1 bin does and a dilated FCN's
effective receptive field does not (measured in data/README.md; the first designs used the
sky's hue, which the FCN read through its dilated layers, and Synthcity v4's clouds were
present or absent, which a window of sky tells). The two cues are independent, so each pair
needs its own global evidence. Poles and traffic signs are small and thin ("inconspicuous
classes"). The drawing is :mod:`pspnet_edu.data.scene`; notebooks/06_cityscapes_data.ipynb
shows the scenes.

Deviation: the paper evaluates on real scenes; Synthcity is a teaching stand-in whose context
rule is arbitrary on purpose (like the paper's "a car on a river is a boat", it cannot be
guessed from local appearance), so that the effect of the PPM can be seen in minutes on a CPU.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pspnet_edu.data.labels import CITYSCAPES_CLASSES
from pspnet_edu.data.scene import draw_scene  # noqa: F401 (re-exported: lessons draw scenes from here)
from pspnet_edu.data.manifest import (
    check_output_name,
    manifest_files_present,
    publish_atomically,
    read_manifest,
    save_png,
    write_manifest,
)
from pspnet_edu.files import REPOSITORY

SYNTHCITY_VERSION = 5  # bump whenever the drawing code changes: ensure_synthetic regenerates
ANNOTATED_FRAME = 19  # Cityscapes annotates the 20th frame of each 30-frame snippet: *_000019_*
CITIES = {"train": ("synthbourg", "pixelstadt"), "val": ("rasterheim",)}  # val cities unseen, as in Cityscapes

# (class when the cue is absent, class when it is present), by name. The cue is in the sky only.
CONTEXT_PAIRS: tuple[tuple[str, str], ...] = (("bus", "train"), ("terrain", "vegetation"))
THIN_CLASSES: tuple[str, ...] = ("pole", "traffic sign", "person", "car")  # small and thin: what context may cost
CONTEXT_CUES: dict[tuple[str, str], str] = {
    ("bus", "train"): "sunset glow: no glow -> bus, orange glow patches over 50-65 % of the sky the clouds "
                      "leave clear (dusk) -> train",
    ("terrain", "vegetation"): "cloud share: clouds over 25-42 % of the visible sky -> terrain, over 58-75 % of "
                               "it -> vegetation",
}
_TRAIN_ID_BY_NAME = {c.name: c.train_id for c in CITYSCAPES_CLASSES}
# The trainIds of the classes above (bus, train, terrain, vegetation): score these for the PPM effect.
CONTEXT_CLASSES: tuple[int, ...] = tuple(_TRAIN_ID_BY_NAME[name] for pair in CONTEXT_PAIRS for name in pair)
# Every class Synthcity draws (12 of the 19 trained classes), as trainIds.
SYNTHCITY_CLASSES: tuple[int, ...] = tuple(sorted(_TRAIN_ID_BY_NAME[name] for name in (
    "road", "sidewalk", "building", "pole", "traffic sign", "vegetation",
    "terrain", "sky", "person", "car", "bus", "train")))


@dataclass(frozen=True)
class SynthcityOptions:
    """What a Synthcity set is made from; saved in its manifest and compared on reuse."""

    # 300 + 60 images of 128x256 fit the course's budget: in a few hundred iterations of batch
    # 8 the tiny PSPNet sees each training image about ten times (data/README.md, measurements).
    train: int = 300
    val: int = 60
    size: tuple[int, int] = (128, 256)  # (H, W); Cityscapes' 1:2 aspect ratio
    seed: int = 0


# ---------------------------------------------------------------------------------------------
# Writing a set in the Cityscapes layout, atomically, with a manifest written last.
# ---------------------------------------------------------------------------------------------

def default_data_root() -> Path:
    """The course's data folder: ``$PSPNET_EDU_DATA`` if set, else ``<repo>/data``."""
    override = os.environ.get("PSPNET_EDU_DATA")
    return Path(override) if override else REPOSITORY / "data"


def default_synthetic_root() -> Path:
    """Where the embedded set lives by default: ``<data root>/synthcity``."""
    return default_data_root() / "synthcity"


_COLOUR_BY_LABEL_ID = np.zeros((256, 4), dtype=np.uint8)
for _c in CITYSCAPES_CLASSES:
    if _c.id >= 0:
        _COLOUR_BY_LABEL_ID[_c.id] = (*_c.color, 255)


def _scene_flags(index: int) -> tuple[bool, bool]:
    """(dusk, cloudy) of image ``index``: the four combinations in turn, so every split is balanced."""
    return bool(index % 2), bool((index // 2) % 2)


def _write_split(out: Path, split: str, count: int, options: SynthcityOptions) -> list[str]:
    height, width = options.size
    split_code = {"train": 0, "val": 1}[split]
    written = []
    cities = CITIES[split]
    for index in range(count):
        city = cities[index % len(cities)]
        sequence = index // len(cities)
        # One generator per image, seeded from (seed, split, index): image k does not depend on
        # how many images are asked for, and images could be drawn in any order.
        rng = np.random.default_rng([options.seed, split_code, index])
        dusk, cloudy = _scene_flags(index)
        rgb, label_ids, instance_ids = draw_scene(rng, height, width, dusk, cloudy)
        stem = f"{city}_{sequence:06d}_{ANNOTATED_FRAME:06d}"
        image_dir = out / "leftImg8bit" / split / city
        label_dir = out / "gtFine" / split / city
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        files = {
            image_dir / f"{stem}_leftImg8bit.png": rgb,
            label_dir / f"{stem}_gtFine_labelIds.png": label_ids,
            label_dir / f"{stem}_gtFine_color.png": _COLOUR_BY_LABEL_ID[label_ids],  # RGBA, as in Cityscapes
            label_dir / f"{stem}_gtFine_instanceIds.png": instance_ids,  # 16-bit, as in Cityscapes
        }
        for path, array in files.items():
            save_png(array, path)
            written.append(path.relative_to(out).as_posix())
    return written


def generate_synthetic(out: str | Path, train: int = 300, val: int = 60, size: tuple[int, int] = (128, 256),
                       seed: int = 0, force: bool = False) -> Path:
    """Generate Synthcity into ``out`` (Cityscapes layout) and return the folder.

    Byte-identical for the same options, so a complete set already made with these options
    (and this version of the generator) is left as it is and returned at once; ``force=True``
    regenerates it anyway. Otherwise ``out`` is replaced only if it is empty or an earlier
    Synthcity set holding nothing but the files of its manifest: a folder with files of the
    user's in it (a notes file, an extra city) is never replaced (FileExistsError naming
    them), and no file the generator did not write is ever deleted. The new set appears at
    once, complete, with ``manifest.json``.
    """
    out = check_output_name(out)
    options = SynthcityOptions(train=int(train), val=int(val), size=tuple(int(s) for s in size), seed=int(seed))
    _check_options(options)
    if not force and synthetic_is_complete(out, **asdict(options)):
        return out

    def build(tmp: Path) -> None:
        files = []
        for split, count in (("train", options.train), ("val", options.val)):
            files += _write_split(tmp, split, count, options)
        write_manifest(tmp, "synthcity", SYNTHCITY_VERSION, options_json(options), files,
                       extra={"context_pairs": {" / ".join(p): CONTEXT_CUES[p] for p in CONTEXT_PAIRS}})

    return publish_atomically(build, out, "synthcity", why=_why_regenerate(out, options))


def options_json(options: SynthcityOptions) -> dict:
    """``options`` as the manifest stores them (JSON values: the size as a list)."""
    return {**asdict(options), "size": list(options.size)}


def _describe(options: dict) -> str:
    """``{"train": 4, "val": 2, "size": [64, 128], "seed": 3}`` -> ``"train=4 val=2 size=64x128 seed=3"``."""
    return " ".join(f"{key}={'x'.join(map(str, value)) if isinstance(value, list) else value}"
                    for key, value in options.items())


def _why_regenerate(root: Path, options: SynthcityOptions) -> str:
    """Why the Synthcity set in ``root`` is to be rebuilt, in words for an error message."""
    manifest = read_manifest(root)
    if manifest is None or manifest.get("kind") != "synthcity":
        return ""
    if manifest.get("version") != SYNTHCITY_VERSION:
        return f"it was drawn by Synthcity version {manifest.get('version')}; this is version {SYNTHCITY_VERSION}"
    found, wanted = manifest.get("options"), options_json(options)
    if found != wanted:
        if not isinstance(found, dict):
            return f"it was made with options {found!r}, not {_describe(wanted)}"
        order = {key: index for index, key in enumerate(wanted)}  # the manifest stores its keys sorted
        found = dict(sorted(found.items(), key=lambda item: order.get(item[0], len(order))))
        return f"it was made with {_describe(found)}, not {_describe(wanted)}"
    if not manifest_files_present(root, manifest):
        return "some of its files are missing"
    return "on request"


def _check_options(options: SynthcityOptions) -> None:
    height, width = options.size
    if height < 32 or width < 32:
        raise ValueError(f"size {height}x{width} is too small to draw a street; use at least 32x32, e.g. 128x256")
    if options.train < 0 or options.val < 0 or options.train + options.val == 0:
        raise ValueError(f"train={options.train}, val={options.val}: ask for at least one image and no negative counts")


def synthetic_is_complete(root: str | Path, **options: int | tuple[int, int]) -> bool:
    """True if ``root`` holds a current Synthcity set made with these options and no file is missing.

    Files added next to the set (which are never part of it) do not make it incomplete.
    """
    root = check_output_name(root)
    manifest = read_manifest(root)
    wanted = options_json(SynthcityOptions(**options))
    if manifest is None or manifest.get("kind") != "synthcity" or manifest.get("version") != SYNTHCITY_VERSION:
        return False
    if manifest.get("options") != wanted:
        return False
    return manifest_files_present(root, manifest)


def ensure_synthetic(root: str | Path | None = None, **options: int | tuple[int, int]) -> Path:
    """Return a complete Synthcity folder, generating it first if it is absent, incomplete or different.

    ``root`` defaults to :func:`default_synthetic_root`; ``options`` are those of
    :func:`generate_synthetic` (train, val, size, seed; the defaults otherwise). A set that
    holds only its own files is regenerated when its options or the generator's version
    differ; a folder that is not a Synthcity set, or a set holding files its manifest does not
    list (a learner's additions), is never overwritten (FileExistsError naming those files).
    """
    if root is not None:
        return Path(root) if synthetic_is_complete(root, **options) else generate_synthetic(root, **options)
    root = default_synthetic_root()
    if synthetic_is_complete(root, **options):
        return root
    try:
        return generate_synthetic(root, **options)
    except FileExistsError as error:  # the default folder: say how to use another one (train, demo)
        raise FileExistsError(f"{error} (to keep Synthcity elsewhere, set PSPNET_EDU_DATA to another folder; "
                              "to train on other data, pass --data)") from None
