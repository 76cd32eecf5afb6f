"""Synthcity: procedural street scenes in the Cityscapes format, built so that context matters.

Real Cityscapes needs a login and may not be redistributed, so the course ships a generator
instead. Its scenes are drawn with numpy from a seed (byte-identical PNGs every time) and
written in exactly the Cityscapes layout and naming with real labelIds, so everything that
reads Cityscapes (this package, ``torchvision.datasets.Cityscapes``) reads Synthcity.

The set is a controlled experiment for the paper's central claim (Zhao et al. 2017, Sec. 1
and Fig. 2): a dilated FCN labels each pixel from what its *effective* receptive field sees,
and fails where only the whole scene tells the answer; PSPNet's pyramid pooling hands every
pixel a summary of the whole image and fixes it. Two pairs of classes are drawn by the very
same code, so they are identical locally (same colours, texture, shapes, sizes, positions)
and only the sky, far above them, says which is which:

- ``bus`` / ``train`` ("confusing categories"): large vehicles on the road are buses under a
  blue day sky and trains under an orange dusk sky;
- ``vegetation`` / ``terrain`` (the same kind of failure on "stuff"): the green ground beside
  the sidewalks is vegetation under a cloudy sky and terrain under a clear one.

The two cues are independent, so each pair needs its own global evidence. Poles and traffic
signs are small and thin ("inconspicuous classes"). The design and the
measurements are in data/README.md; notebooks/06_cityscapes_data.ipynb shows the scenes.

Deviation: the paper evaluates on real scenes; Synthcity is a teaching stand-in whose context
rule is arbitrary on purpose (like the paper's "a car on a river is a boat", it cannot be
guessed from local appearance), so that the effect of the PPM can be seen in minutes on a CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pspnet_edu.data.labels import CITYSCAPES_CLASSES, LABEL_ID
from pspnet_edu.data.manifest import (
    manifest_files_present,
    publish_atomically,
    read_manifest,
    save_png,
    write_manifest,
)

SYNTHCITY_VERSION = 3  # bump whenever the drawing code changes: ensure_synthetic regenerates
ANNOTATED_FRAME = 19  # Cityscapes annotates the 20th frame of each 30-frame snippet: *_000019_*
CITIES = {"train": ("synthbourg", "pixelstadt"), "val": ("rasterheim",)}  # val cities unseen, as in Cityscapes

# (class when the cue is absent, class when it is present), by name. The cue is in the sky only.
CONTEXT_PAIRS: tuple[tuple[str, str], ...] = (("bus", "train"), ("terrain", "vegetation"))
CONTEXT_CUES: dict[tuple[str, str], str] = {
    ("bus", "train"): "sky colour: blue day sky -> bus, orange dusk sky -> train",
    ("terrain", "vegetation"): "clouds: clear sky -> terrain, cloudy sky -> vegetation",
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
# Drawing. Everything is relative to the image size so that any --size gives the same scenes.
# ---------------------------------------------------------------------------------------------

def _value_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth random field in [0, 1] of shape (H, W): random values on a grid, interpolated."""
    cell = max(float(cell), 1.0)
    grid = rng.random((int(height / cell) + 2, int(width / cell) + 2), dtype=np.float32)
    y = np.arange(height, dtype=np.float32) / cell
    x = np.arange(width, dtype=np.float32) / cell
    y0, x0 = y.astype(np.int64), x.astype(np.int64)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep: no grid artefacts
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


class _Canvas:
    """An RGB image with its labelId and instanceId images, painted back to front."""

    def __init__(self, rng: np.random.Generator, height: int, width: int) -> None:
        self.height, self.width = height, width
        self.rgb = np.zeros((height, width, 3), dtype=np.float32)
        self.label = np.zeros((height, width), dtype=np.uint8)  # labelIds; 0 = unlabeled
        self.instance = np.zeros((height, width), dtype=np.uint16)
        # Two texture fields shared by every surface of the image: fine grain and blotches.
        self.fine = _value_noise(rng, height, width, 1.5) - 0.5
        self.coarse = _value_noise(rng, height, width, height / 16) - 0.5
        self._instances: dict[int, int] = {}

    def new_instance(self, label_id: int) -> int:
        """Cityscapes instanceIds: labelId * 1000 + index for classes that have instances."""
        self._instances[label_id] = self._instances.get(label_id, -1) + 1
        return label_id * 1000 + self._instances[label_id]

    def paint(self, mask: np.ndarray, box: tuple[int, int, int, int], colour: np.ndarray,
              label_id: int, instance_id: int | None = None, fine: float = 0.1,
              coarse: float = 0.0) -> None:
        """Paint ``mask`` (local to ``box`` = y0, y1, x0, x1, already clipped) with a textured colour."""
        y0, y1, x0, x1 = box
        if y1 <= y0 or x1 <= x0 or not mask.any():
            return
        window = (slice(y0, y1), slice(x0, x1))
        shade = 1 + fine * self.fine[window] + coarse * self.coarse[window]  # (h, w)
        self.rgb[window][mask] = (np.asarray(colour, np.float32) * shade[..., None])[mask]
        self.label[window][mask] = label_id
        self.instance[window][mask] = label_id if instance_id is None else instance_id

    def clip(self, y0: float, y1: float, x0: float, x1: float) -> tuple[int, int, int, int] | None:
        box = (max(int(round(y0)), 0), min(int(round(y1)), self.height),
               max(int(round(x0)), 0), min(int(round(x1)), self.width))
        return box if box[1] > box[0] and box[3] > box[2] else None

    def rect(self, y0: float, y1: float, x0: float, x1: float, colour: np.ndarray, label_id: int,
             instance_id: int | None = None, fine: float = 0.1, coarse: float = 0.0) -> None:
        box = self.clip(y0, y1, x0, x1)
        if box is not None:
            mask = np.ones((box[1] - box[0], box[3] - box[2]), dtype=bool)
            self.paint(mask, box, colour, label_id, instance_id, fine, coarse)

    def ellipse(self, cy: float, cx: float, ry: float, rx: float, colour: np.ndarray, label_id: int,
                instance_id: int | None = None, fine: float = 0.1) -> None:
        ry, rx = max(ry, 0.5), max(rx, 0.5)
        box = self.clip(cy - ry, cy + ry, cx - rx, cx + rx)
        if box is not None:
            yy = (np.arange(box[0], box[1]) + 0.5 - cy)[:, None] / ry
            xx = (np.arange(box[2], box[3]) + 0.5 - cx)[None, :] / rx
            self.paint(yy ** 2 + xx ** 2 <= 1, box, colour, label_id, instance_id, fine)


def _jitter(rng: np.random.Generator, colour: tuple[float, float, float], amount: float) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3), 0, 1).astype(np.float32)


# Colours shared on purpose: vehicles of the context pair and cars use the same paints, sidewalk
# and building greys overlap, signs share yellow with some vehicles; colour alone is not enough.
_VEHICLE_PAINTS = ((0.75, 0.15, 0.12), (0.85, 0.85, 0.82), (0.85, 0.7, 0.15), (0.2, 0.35, 0.65),
                   (0.3, 0.5, 0.4), (0.55, 0.55, 0.58))
_CAR_PAINTS = _VEHICLE_PAINTS + ((0.1, 0.1, 0.12), (0.45, 0.1, 0.35), (0.9, 0.45, 0.1))
_FACADES = ((0.72, 0.62, 0.48), (0.55, 0.33, 0.27), (0.6, 0.6, 0.6), (0.8, 0.76, 0.66), (0.45, 0.42, 0.4))
_GREEN = (0.33, 0.5, 0.2)  # the one green of both vegetation and terrain
_CLOTHES = ((0.15, 0.2, 0.45), (0.6, 0.1, 0.1), (0.2, 0.2, 0.2), (0.85, 0.85, 0.8), (0.3, 0.5, 0.3))


def draw_scene(rng: np.random.Generator, height: int, width: int, dusk: bool, cloudy: bool
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one street scene: RGB uint8 (H, W, 3), labelIds uint8 (H, W), instanceIds uint16 (H, W).

    ``dusk`` and ``cloudy`` are the two scene-level cues; they change the sky and the labels of
    the context pairs, and nothing else (every other random draw is the same for both values).
    """
    canvas = _Canvas(rng, height, width)
    horizon = height * rng.uniform(0.5, 0.56)  # row of the horizon and the vanishing point
    ground = height - horizon  # rows below the horizon; object sizes are fractions of it
    vanish_x = width * rng.uniform(0.4, 0.6)

    # Sky: a vertical gradient whose colour is cue 1, with or without clouds (cue 2).
    rows = (np.arange(height, dtype=np.float32) / horizon)[:, None, None]  # 0 at the top, 1 at horizon
    if dusk:
        top, low = _jitter(rng, (0.45, 0.3, 0.55), 0.06), _jitter(rng, (0.98, 0.6, 0.3), 0.05)
    else:
        top, low = _jitter(rng, (0.25, 0.45, 0.85), 0.06), _jitter(rng, (0.65, 0.8, 0.95), 0.05)
    sky = top + (low - top) * np.clip(rows, 0, 1)  # (H, 1, 3)
    canvas.rgb[:] = sky * (1 + 0.04 * canvas.fine[..., None])
    canvas.label[:] = LABEL_ID["sky"]
    canvas.instance[:] = LABEL_ID["sky"]
    clouds = _value_noise(rng, height, width, height / 10)  # drawn in both cases: same rng stream
    coverage = rng.uniform(0.3, 0.5)
    if cloudy:
        sky_rows = slice(0, int(horizon))
        threshold = np.quantile(clouds[sky_rows], 1 - coverage)
        white = np.clip(clouds[..., None] - threshold, 0, 0.08) / 0.08  # soft cloud edges
        cloud_colour = 0.25 * sky + 0.75 * np.float32(0.95)
        canvas.rgb[sky_rows] = (canvas.rgb * (1 - white) + cloud_colour * white)[sky_rows]

    # Buildings: one continuous row standing on the horizon, so that the sky never reaches down
    # to the ground: the context objects below never touch it.
    x = -rng.uniform(0, 0.1) * width
    while x < width:
        building_width = width * rng.uniform(0.08, 0.22)
        top_row = horizon - height * rng.uniform(0.15, 0.28)
        facade = _jitter(rng, _FACADES[rng.integers(len(_FACADES))], 0.05)
        canvas.rect(top_row, horizon + 1, x, x + building_width, facade, LABEL_ID["building"], fine=0.12)
        period = height * rng.uniform(0.05, 0.08)
        window = facade * rng.uniform(0.35, 0.55)
        for wy in np.arange(top_row + period * 0.4, horizon - period * 0.6, period):
            for wx in np.arange(x + period * 0.4, x + building_width - period * 0.6, period):
                canvas.rect(wy, wy + period * 0.5, wx, wx + period * 0.5, window, LABEL_ID["building"], fine=0.1)
        x += building_width

    # Ground, in perspective: road in the middle, a sidewalk on each side, green beyond.
    y = np.arange(height, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float32)[None, :] + 0.5
    depth = np.clip((y - horizon) / ground, 0, None)  # 0 at the horizon, 1 at the bottom row
    offset = xs - vanish_x
    road_half = width * rng.uniform(0.28, 0.4)  # half-width of the road at the bottom row
    walk_left, walk_right = width * rng.uniform(0.08, 0.16, 2)
    below = y > horizon
    green = below & ((offset < -depth * (road_half + walk_left)) | (offset > depth * (road_half + walk_right)))
    walk = below & ~green & (np.abs(offset) > depth * road_half)
    road = below & ~green & ~walk
    full = (0, height, 0, width)
    green_colour = _jitter(rng, _GREEN, 0.06)
    green_label = LABEL_ID["vegetation" if cloudy else "terrain"]
    canvas.paint(green, full, green_colour, green_label, fine=0.45, coarse=0.5)
    canvas.paint(walk, full, _jitter(rng, (0.62, 0.58, 0.6), 0.06), LABEL_ID["sidewalk"], fine=0.15)
    # Paving: darker joints every few rows, spaced by perspective.
    joints = walk & (np.mod(np.log(np.maximum(depth, 1e-3)) * 12, 1) < 0.25)
    canvas.rgb[joints] *= 0.8
    canvas.paint(road, full, _jitter(rng, (0.32, 0.31, 0.34), 0.04), LABEL_ID["road"], fine=0.25)
    dashes = road & (np.abs(offset - depth * road_half * rng.uniform(-0.1, 0.1)) < depth * width * 0.008 + 0.3) \
        & (np.mod(np.log(np.maximum(depth, 1e-3)) * 5, 1) < 0.5)
    canvas.rgb[dashes] = np.float32(0.85)

    # Objects, each standing at a depth t in (0, 1] (its bottom row is horizon + t * ground),
    # sized in proportion to t; drawn far to near so that near objects occlude far ones.
    objects: list[tuple[float, Callable[[], None]]] = []

    def big_vehicle(t: float, u: float) -> None:
        # The context pair bus / train: one drawing, two labels (the sky decides).
        label_id = LABEL_ID["train" if dusk else "bus"]
        # Long and low, near the camera: the top stays 20-40 % of t * ground below the horizon,
        # so even the top edge is far from the sky (a first design let the FCN read it there).
        bottom, h = horizon + t * ground, t * ground * rng.uniform(0.6, 0.8)
        w = h * rng.uniform(2.6, 3.8)
        left = vanish_x + t * road_half * u - w / 2
        paint = _jitter(rng, _VEHICLE_PAINTS[rng.integers(len(_VEHICLE_PAINTS))], 0.05)
        inst = canvas.new_instance(label_id)
        canvas.rect(bottom - h, bottom - 0.12 * h, left, left + w, paint, label_id, inst, fine=0.1)
        glass = _jitter(rng, (0.2, 0.25, 0.3), 0.05)
        canvas.rect(bottom - 0.85 * h, bottom - 0.55 * h, left + 0.04 * w, left + 0.96 * w, glass, label_id, inst)
        for k in range(1, int(rng.integers(4, 8))):  # window posts
            post = left + 0.04 * w + k * 0.92 * w / 8
            canvas.rect(bottom - 0.85 * h, bottom - 0.55 * h, post, post + 0.02 * w, paint, label_id, inst)
        canvas.rect(bottom - 0.4 * h, bottom - 0.34 * h, left, left + w, paint * 0.6, label_id, inst)
        for wheel in (0.15, 0.3, 0.7, 0.85):
            canvas.ellipse(bottom - 0.12 * h, left + wheel * w, 0.12 * h, 0.05 * w, np.float32([0.08] * 3),
                           label_id, inst)

    def car(t: float, u: float) -> None:
        bottom, h = horizon + t * ground, t * ground * rng.uniform(0.4, 0.5)
        w = h * rng.uniform(1.6, 2.4)
        left = vanish_x + t * road_half * u - w / 2
        paint = _jitter(rng, _CAR_PAINTS[rng.integers(len(_CAR_PAINTS))], 0.05)
        inst = canvas.new_instance(LABEL_ID["car"])
        canvas.rect(bottom - 0.6 * h, bottom - 0.15 * h, left, left + w, paint, LABEL_ID["car"], inst)
        canvas.rect(bottom - h, bottom - 0.55 * h, left + 0.2 * w, left + 0.8 * w, paint, LABEL_ID["car"], inst)
        canvas.rect(bottom - 0.92 * h, bottom - 0.6 * h, left + 0.25 * w, left + 0.75 * w,
                    _jitter(rng, (0.25, 0.3, 0.35), 0.05), LABEL_ID["car"], inst)
        for wheel in (0.2, 0.8):
            canvas.ellipse(bottom - 0.15 * h, left + wheel * w, 0.15 * h, 0.1 * w, np.float32([0.08] * 3),
                           LABEL_ID["car"], inst)

    def person(t: float, side: float, u: float) -> None:
        walk_width = walk_right if side > 0 else walk_left
        cx = vanish_x + side * t * (road_half + walk_width * u)
        bottom, h = horizon + t * ground, t * ground * rng.uniform(0.6, 0.75)
        w = h * 0.32
        inst = canvas.new_instance(LABEL_ID["person"])
        shirt = _jitter(rng, _CLOTHES[rng.integers(len(_CLOTHES))], 0.05)
        trousers = _jitter(rng, _CLOTHES[rng.integers(len(_CLOTHES))], 0.05)
        canvas.rect(bottom - 0.5 * h, bottom, cx - 0.35 * w, cx + 0.35 * w, trousers, LABEL_ID["person"], inst)
        canvas.rect(bottom - 0.85 * h, bottom - 0.48 * h, cx - 0.5 * w, cx + 0.5 * w, shirt, LABEL_ID["person"], inst)
        canvas.ellipse(bottom - 0.91 * h, cx, 0.09 * h, 0.3 * w, _jitter(rng, (0.85, 0.65, 0.5), 0.08),
                       LABEL_ID["person"], inst)

    def pole(t: float, side: float) -> None:
        walk_width = walk_right if side > 0 else walk_left
        cx = vanish_x + side * t * (road_half + walk_width * 0.85)
        bottom, h = horizon + t * ground, t * ground * rng.uniform(1.2, 1.5)
        # Thin but at least 4 pixels wide: at output stride 8 a 1-3 pixel line is barely learnable.
        w = max(4.0, 0.1 * t * ground)
        canvas.rect(bottom - h, bottom, cx - w / 2, cx + w / 2, _jitter(rng, (0.42, 0.42, 0.45), 0.05),
                    LABEL_ID["pole"], fine=0.05)
        if rng.random() < 0.7:  # a traffic sign on top: a square or a disc
            size, top = max(6.0, 0.3 * t * ground), bottom - h
            face = _jitter(rng, ((0.9, 0.8, 0.1), (0.15, 0.3, 0.75), (0.85, 0.15, 0.15))[rng.integers(3)], 0.05)
            if rng.random() < 0.5:
                canvas.rect(top - size, top, cx - size / 2, cx + size / 2, face, LABEL_ID["traffic sign"])
            else:
                canvas.ellipse(top - size / 2, cx, size / 2, size / 2, face, LABEL_ID["traffic sign"])

    for _ in range(rng.choice(3, p=(0.15, 0.6, 0.25))):
        t, u = rng.uniform(0.45, 0.95), rng.uniform(-0.6, 0.6)
        objects.append((t, lambda t=t, u=u: big_vehicle(t, u)))
    for _ in range(rng.integers(1, 5)):
        t, u = rng.uniform(0.25, 1.0), rng.uniform(-0.75, 0.75)
        objects.append((t, lambda t=t, u=u: car(t, u)))
    for _ in range(rng.integers(0, 6)):
        t, side, u = rng.uniform(0.35, 1.0), rng.choice((-1.0, 1.0)), rng.uniform(0.2, 0.7)
        objects.append((t, lambda t=t, side=side, u=u: person(t, side, u)))
    for _ in range(rng.integers(2, 6)):
        t, side = rng.uniform(0.35, 1.0), rng.choice((-1.0, 1.0))
        objects.append((t, lambda t=t, side=side: pole(t, side)))
    for _, draw in sorted(objects, key=lambda item: item[0]):
        draw()

    # Camera: exposure varies per image (the same for every cue value), then sensor noise.
    rgb = canvas.rgb * rng.uniform(0.85, 1.1) + rng.normal(0, 0.025, canvas.rgb.shape).astype(np.float32)
    rgb = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    return rgb, canvas.label, canvas.instance


# ---------------------------------------------------------------------------------------------
# Writing a set in the Cityscapes layout, atomically, with a manifest written last.
# ---------------------------------------------------------------------------------------------

def default_data_root() -> Path:
    """The course's data folder: ``$PSPNET_EDU_DATA`` if set, else ``<repo>/data``."""
    override = os.environ.get("PSPNET_EDU_DATA")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "data"


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
                       seed: int = 0) -> Path:
    """Generate Synthcity into ``out`` (Cityscapes layout) and return the folder.

    Byte-identical for the same options. Replaces ``out`` only if it is empty or an earlier
    Synthcity set; the new set appears at once, complete, with ``manifest.json``.
    """
    options = SynthcityOptions(train=int(train), val=int(val), size=tuple(int(s) for s in size), seed=int(seed))
    _check_options(options)

    def build(tmp: Path) -> None:
        files = []
        for split, count in (("train", options.train), ("val", options.val)):
            files += _write_split(tmp, split, count, options)
        write_manifest(tmp, "synthcity", SYNTHCITY_VERSION, _options_json(options), files,
                       extra={"context_pairs": {" / ".join(p): CONTEXT_CUES[p] for p in CONTEXT_PAIRS}})

    return publish_atomically(build, out, "synthcity")


def _options_json(options: SynthcityOptions) -> dict:
    return {**asdict(options), "size": list(options.size)}


def _check_options(options: SynthcityOptions) -> None:
    height, width = options.size
    if height < 32 or width < 32:
        raise ValueError(f"size {height}x{width} is too small to draw a street; use at least 32x32, e.g. 128x256")
    if options.train < 0 or options.val < 0 or options.train + options.val == 0:
        raise ValueError(f"train={options.train}, val={options.val}: ask for at least one image and no negative counts")


def synthetic_is_complete(root: str | Path, **options: int | tuple[int, int]) -> bool:
    """True if ``root`` holds a current Synthcity set made with these options and no file is missing."""
    root = Path(root)
    manifest = read_manifest(root)
    wanted = _options_json(SynthcityOptions(**options))
    if manifest is None or manifest.get("kind") != "synthcity" or manifest.get("version") != SYNTHCITY_VERSION:
        return False
    if manifest.get("options") != wanted:
        return False
    return manifest_files_present(root, manifest)


def ensure_synthetic(root: str | Path | None = None, **options: int | tuple[int, int]) -> Path:
    """Return a complete Synthcity folder, generating it first if it is absent, incomplete or different.

    ``root`` defaults to :func:`default_synthetic_root`; ``options`` are those of
    :func:`generate_synthetic` (train, val, size, seed; the defaults otherwise). A folder that
    is not a Synthcity set is never overwritten (FileExistsError).
    """
    root = default_synthetic_root() if root is None else Path(root)
    if synthetic_is_complete(root, **options):
        return root
    return generate_synthetic(root, **options)
