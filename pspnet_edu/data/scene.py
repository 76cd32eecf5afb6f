"""Drawing one Synthcity street scene with numpy: sky, buildings, ground, objects, camera.

Everything is relative to the image size, so any size gives the same scenes. The two
scene-level cues (``dusk``, ``cloudy``) change the sky and the labels of the context pairs and
nothing else: every random number is drawn whatever their values, in the same order, so the
four versions of a scene are identical pixel for pixel below the sky
(``tests/test_data_synthetic.py`` checks it). ``pspnet_edu.data.synthetic`` writes the sets;
data/README.md gives the design and the measurements behind it.

The cues (Synthcity v5), both drawn over the sky the buildings leave visible, so that no patch
of sky near an object is sure to show which way they go, while the whole sky's share does (the
PPM's 1x1 bin sees it):

- ``cloudy``: every sky has white clouds, large ones; they cover less than half of the visible
  sky (25-42 %) under a "clear" sky -> the green ground is terrain, more than half (58-75 %) under
  a "cloudy" one -> vegetation;
- ``dusk``: warm orange patches of sunset glow over 50-65 % of the visible sky the clouds leave
  clear (the clouds' soft edges go over them) -> the long vehicles are trains (buses by day).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pspnet_edu.data.labels import LABEL_ID

Colour = tuple[float, float, float]

# Colours shared on purpose: vehicles of the context pair and cars use the same paints, sidewalk
# and building greys overlap, signs share yellow with some vehicles; colour alone is not enough.
VEHICLE_PAINTS = ((0.75, 0.15, 0.12), (0.85, 0.85, 0.82), (0.85, 0.7, 0.15), (0.2, 0.35, 0.65),
                  (0.3, 0.5, 0.4), (0.55, 0.55, 0.58))
CAR_PAINTS = VEHICLE_PAINTS + ((0.1, 0.1, 0.12), (0.45, 0.1, 0.35), (0.9, 0.45, 0.1))
LONG_VEHICLE_ASPECT = (4.0, 6.0)  # width / height of a bus or train, drawn uniformly: long and low
FACADES = ((0.72, 0.62, 0.48), (0.55, 0.33, 0.27), (0.6, 0.6, 0.6), (0.8, 0.76, 0.66), (0.45, 0.42, 0.4))
GREEN = (0.33, 0.5, 0.2)  # the one green of both vegetation and terrain
CLOTHES = ((0.15, 0.2, 0.45), (0.6, 0.1, 0.1), (0.2, 0.2, 0.2), (0.85, 0.85, 0.8), (0.3, 0.5, 0.3))
SKY_TOP, SKY_LOW = (0.25, 0.45, 0.85), (0.65, 0.8, 0.95)  # one day-blue gradient for every scene
GLOW = (0.95, 0.55, 0.25)  # the sunset glow of the dusk cue
GLOW_COVER = (0.5, 0.65)  # the share of the visible cloud-free sky the glow covers at dusk
CLOUD_SHARE = (0.25, 0.42)  # the clouds' share u of the visible sky: u under a clear sky, 1 - u under a cloudy one
CLOUD_CELL = 2.0  # the cloud field's cell is H / CLOUD_CELL: large clouds, a few per sky


def value_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
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


def jitter(rng: np.random.Generator, colour: Colour, amount: float) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3), 0, 1).astype(np.float32)


class Canvas:
    """An RGB image with its labelId and instanceId images, painted back to front."""

    def __init__(self, rng: np.random.Generator, height: int, width: int) -> None:
        self.height, self.width = height, width
        self.rgb = np.zeros((height, width, 3), dtype=np.float32)
        self.label = np.zeros((height, width), dtype=np.uint8)  # labelIds; 0 = unlabeled
        self.instance = np.zeros((height, width), dtype=np.uint16)
        # Two texture fields shared by every surface of the image: fine grain and blotches.
        self.fine = value_noise(rng, height, width, 1.5) - 0.5
        self.coarse = value_noise(rng, height, width, height / 16) - 0.5
        self._instances: dict[int, int] = {}

    def new_instance(self, label_id: int) -> int:
        """Cityscapes instanceIds: labelId * 1000 + index for classes that have instances."""
        self._instances[label_id] = self._instances.get(label_id, -1) + 1
        return label_id * 1000 + self._instances[label_id]

    def paint(self, mask: np.ndarray, box: tuple[int, int, int, int], colour: np.ndarray, label_id: int,
              instance_id: int | None = None, fine: float = 0.1, coarse: float = 0.0) -> None:
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


@dataclass(frozen=True)
class Street:
    """The geometry of one scene: horizon, vanishing point, road and sidewalk widths, and the cues."""

    horizon: float  # row of the horizon and the vanishing point
    vanish_x: float
    road_half: float  # half-width of the road at the bottom row
    walk_left: float
    walk_right: float
    dusk: bool
    cloudy: bool

    def ground(self, height: int) -> float:
        """Rows below the horizon; object sizes are fractions of it."""
        return height - self.horizon


def _patches(field: np.ndarray, where: np.ndarray, cover: float) -> np.ndarray:
    """(H, W, 1) soft weights in [0, 1] on the ``cover`` fraction of mask ``where`` where ``field`` is highest."""
    threshold = np.quantile(field[where], 1 - cover)
    return np.clip(field[..., None] - threshold, 0, 0.08) / 0.08


@dataclass(frozen=True)
class SkyCues:
    """What the sky's cues are drawn from, kept until the buildings have said which sky is visible."""

    sky: np.ndarray  # (H, 1, 3): the sky's gradient, which tints the clouds
    glow_field: np.ndarray
    glow_cover: float  # of the visible sky the clouds leave clear
    cloud_field: np.ndarray
    cloud_share: float  # of the visible sky


def draw_sky(canvas: Canvas, rng: np.random.Generator, street: Street) -> SkyCues:
    """A day-blue gradient, and the random fields of the two cues (drawn whatever their values: the same stream)."""
    height, width = canvas.height, canvas.width
    sky = paint_sky_gradient(canvas, rng, street)
    glow_field, glow_cover = value_noise(rng, height, width, height / 8), rng.uniform(*GLOW_COVER)
    cloud_field, share = value_noise(rng, height, width, height / CLOUD_CELL), rng.uniform(*CLOUD_SHARE)
    return SkyCues(sky, glow_field, glow_cover, cloud_field, 1 - share if street.cloudy else share)


def paint_sky_gradient(canvas: Canvas, rng: np.random.Generator, street: Street) -> np.ndarray:
    """The whole canvas labelled sky and painted with a day-blue gradient; returns the gradient (H, 1, 3)."""
    rows = (np.arange(canvas.height, dtype=np.float32) / street.horizon)[:, None, None]  # 0 at the top, 1 at horizon
    top, low = jitter(rng, SKY_TOP, 0.06), jitter(rng, SKY_LOW, 0.05)
    sky = top + (low - top) * np.clip(rows, 0, 1)  # (H, 1, 3)
    canvas.rgb[:] = sky * (1 + 0.04 * canvas.fine[..., None])
    canvas.label[:] = LABEL_ID["sky"]
    canvas.instance[:] = LABEL_ID["sky"]
    return sky


def draw_sky_cues(canvas: Canvas, street: Street, cues: SkyCues) -> None:
    """Clouds over ``cloud_share`` of the sky left visible; at dusk, first the glow over part of its clear sky."""
    visible = (canvas.label == LABEL_ID["sky"]) & (np.arange(canvas.height)[:, None] < int(street.horizon))
    threshold = np.quantile(cues.cloud_field[visible], 1 - cues.cloud_share)
    white = (np.clip((cues.cloud_field - threshold) / 0.08 + 0.5, 0, 1) * visible)[..., None]  # > 0.5 on the share
    if street.dusk:
        glow = _patches(cues.glow_field, visible & (white[..., 0] <= 0.5), cues.glow_cover) * visible[..., None]
        canvas.rgb[:] = canvas.rgb * (1 - glow) + np.float32(GLOW) * glow
    cloud_colour = 0.25 * cues.sky + 0.75 * np.float32(0.95)
    canvas.rgb[:] = canvas.rgb * (1 - white) + cloud_colour * white


def draw_buildings(canvas: Canvas, rng: np.random.Generator, street: Street) -> None:
    """One continuous row standing on the horizon: the sky never reaches down to the ground."""
    height, width, horizon = canvas.height, canvas.width, street.horizon
    x = -rng.uniform(0, 0.1) * width
    while x < width:
        building_width = width * rng.uniform(0.08, 0.22)
        top_row = horizon - height * rng.uniform(0.15, 0.28)
        facade = jitter(rng, FACADES[rng.integers(len(FACADES))], 0.05)
        canvas.rect(top_row, horizon + 1, x, x + building_width, facade, LABEL_ID["building"], fine=0.12)
        period = height * rng.uniform(0.05, 0.08)
        window = facade * rng.uniform(0.35, 0.55)
        for wy in np.arange(top_row + period * 0.4, horizon - period * 0.6, period):
            for wx in np.arange(x + period * 0.4, x + building_width - period * 0.6, period):
                canvas.rect(wy, wy + period * 0.5, wx, wx + period * 0.5, window, LABEL_ID["building"], fine=0.1)
        x += building_width


def draw_ground(canvas: Canvas, rng: np.random.Generator, street: Street) -> None:
    """In perspective: the road in the middle, a sidewalk on each side, green ground beyond (cue 2's pair)."""
    height, width, horizon = canvas.height, canvas.width, street.horizon
    y = np.arange(height, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float32)[None, :] + 0.5
    depth = np.clip((y - horizon) / street.ground(height), 0, None)  # 0 at the horizon, 1 at the bottom row
    offset = xs - street.vanish_x
    below = y > horizon
    green = below & ((offset < -depth * (street.road_half + street.walk_left))
                     | (offset > depth * (street.road_half + street.walk_right)))
    walk = below & ~green & (np.abs(offset) > depth * street.road_half)
    road = below & ~green & ~walk
    full = (0, height, 0, width)
    green_label = LABEL_ID["vegetation" if street.cloudy else "terrain"]
    canvas.paint(green, full, jitter(rng, GREEN, 0.06), green_label, fine=0.45, coarse=0.5)
    canvas.paint(walk, full, jitter(rng, (0.62, 0.58, 0.6), 0.06), LABEL_ID["sidewalk"], fine=0.15)
    joints = walk & (np.mod(np.log(np.maximum(depth, 1e-3)) * 12, 1) < 0.25)  # paving, spaced by perspective
    canvas.rgb[joints] *= 0.8
    canvas.paint(road, full, jitter(rng, (0.32, 0.31, 0.34), 0.04), LABEL_ID["road"], fine=0.25)
    dashes = road & (np.abs(offset - depth * street.road_half * rng.uniform(-0.1, 0.1)) < depth * width * 0.008 + 0.3) \
        & (np.mod(np.log(np.maximum(depth, 1e-3)) * 5, 1) < 0.5)
    canvas.rgb[dashes] = np.float32(0.85)


def draw_long_vehicle(canvas: Canvas, rng: np.random.Generator, street: Street, t: float, u: float) -> None:
    """The context pair bus / train: one drawing, two labels (the sky decides). Long and low, near the
    camera, so that even its top edge is far from the sky (a taller design let the FCN read the cue there)."""
    label_id = LABEL_ID["train" if street.dusk else "bus"]
    bottom = street.horizon + t * street.ground(canvas.height)
    h = t * street.ground(canvas.height) * rng.uniform(0.5, 0.65)
    w = h * rng.uniform(*LONG_VEHICLE_ASPECT)
    left = street.vanish_x + t * street.road_half * u - w / 2
    paint = jitter(rng, VEHICLE_PAINTS[rng.integers(len(VEHICLE_PAINTS))], 0.05)
    inst = canvas.new_instance(label_id)
    canvas.rect(bottom - h, bottom - 0.12 * h, left, left + w, paint, label_id, inst, fine=0.1)
    glass = jitter(rng, (0.2, 0.25, 0.3), 0.05)
    canvas.rect(bottom - 0.85 * h, bottom - 0.55 * h, left + 0.04 * w, left + 0.96 * w, glass, label_id, inst)
    for k in range(1, int(rng.integers(4, 8))):  # window posts
        post = left + 0.04 * w + k * 0.92 * w / 8
        canvas.rect(bottom - 0.85 * h, bottom - 0.55 * h, post, post + 0.02 * w, paint, label_id, inst)
    canvas.rect(bottom - 0.4 * h, bottom - 0.34 * h, left, left + w, paint * 0.6, label_id, inst)
    for wheel in (0.15, 0.3, 0.7, 0.85):
        canvas.ellipse(bottom - 0.12 * h, left + wheel * w, 0.12 * h, 0.05 * w, np.float32([0.08] * 3), label_id, inst)


def draw_car(canvas: Canvas, rng: np.random.Generator, street: Street, t: float, u: float) -> None:
    bottom = street.horizon + t * street.ground(canvas.height)
    h = t * street.ground(canvas.height) * rng.uniform(0.4, 0.5)
    w = h * rng.uniform(1.6, 2.4)
    left = street.vanish_x + t * street.road_half * u - w / 2
    paint = jitter(rng, CAR_PAINTS[rng.integers(len(CAR_PAINTS))], 0.05)
    car = LABEL_ID["car"]
    inst = canvas.new_instance(car)
    canvas.rect(bottom - 0.6 * h, bottom - 0.15 * h, left, left + w, paint, car, inst)
    canvas.rect(bottom - h, bottom - 0.55 * h, left + 0.2 * w, left + 0.8 * w, paint, car, inst)
    canvas.rect(bottom - 0.92 * h, bottom - 0.6 * h, left + 0.25 * w, left + 0.75 * w,
                jitter(rng, (0.25, 0.3, 0.35), 0.05), car, inst)
    for wheel in (0.2, 0.8):
        canvas.ellipse(bottom - 0.15 * h, left + wheel * w, 0.15 * h, 0.1 * w, np.float32([0.08] * 3), car, inst)


def draw_person(canvas: Canvas, rng: np.random.Generator, street: Street, t: float, side: float, u: float) -> None:
    walk_width = street.walk_right if side > 0 else street.walk_left
    cx = street.vanish_x + side * t * (street.road_half + walk_width * u)
    bottom = street.horizon + t * street.ground(canvas.height)
    h = t * street.ground(canvas.height) * rng.uniform(0.6, 0.75)
    w = h * 0.32
    person = LABEL_ID["person"]
    inst = canvas.new_instance(person)
    shirt = jitter(rng, CLOTHES[rng.integers(len(CLOTHES))], 0.05)
    trousers = jitter(rng, CLOTHES[rng.integers(len(CLOTHES))], 0.05)
    canvas.rect(bottom - 0.5 * h, bottom, cx - 0.35 * w, cx + 0.35 * w, trousers, person, inst)
    canvas.rect(bottom - 0.85 * h, bottom - 0.48 * h, cx - 0.5 * w, cx + 0.5 * w, shirt, person, inst)
    canvas.ellipse(bottom - 0.91 * h, cx, 0.09 * h, 0.3 * w, jitter(rng, (0.85, 0.65, 0.5), 0.08), person, inst)


def draw_pole(canvas: Canvas, rng: np.random.Generator, street: Street, t: float, side: float) -> None:
    """A pole ("inconspicuous class"), most of them with a traffic sign on top."""
    walk_width = street.walk_right if side > 0 else street.walk_left
    cx = street.vanish_x + side * t * (street.road_half + walk_width * 0.85)
    ground = street.ground(canvas.height)
    bottom, h = street.horizon + t * ground, t * ground * rng.uniform(1.2, 1.5)
    # Thin but at least 4 pixels wide: at output stride 8 a 1-3 pixel line is barely learnable.
    w = max(4.0, 0.1 * t * ground)
    canvas.rect(bottom - h, bottom, cx - w / 2, cx + w / 2, jitter(rng, (0.42, 0.42, 0.45), 0.05), LABEL_ID["pole"],
                fine=0.05)
    if rng.random() < 0.7:  # a traffic sign on top: a square or a disc
        size, top = max(6.0, 0.3 * t * ground), bottom - h
        face = jitter(rng, ((0.9, 0.8, 0.1), (0.15, 0.3, 0.75), (0.85, 0.15, 0.15))[rng.integers(3)], 0.05)
        if rng.random() < 0.5:
            canvas.rect(top - size, top, cx - size / 2, cx + size / 2, face, LABEL_ID["traffic sign"])
        else:
            canvas.ellipse(top - size / 2, cx, size / 2, size / 2, face, LABEL_ID["traffic sign"])


def place_objects(rng: np.random.Generator) -> list[tuple[float, Callable[..., None], tuple[float, ...]]]:
    """The objects of a scene: (depth t in (0, 1], drawing function, its arguments), in drawing order.

    Sized in proportion to t (their bottom row is horizon + t * ground) and drawn far to near,
    so that near objects occlude far ones.
    """
    objects: list[tuple[float, Callable[..., None], tuple[float, ...]]] = []
    for _ in range(rng.choice(3, p=(0.05, 0.5, 0.45))):  # 0-2 long vehicles, most scenes have one
        t, u = rng.uniform(0.45, 0.95), rng.uniform(-0.6, 0.6)
        objects.append((t, draw_long_vehicle, (t, u)))
    for _ in range(rng.integers(1, 5)):
        t, u = rng.uniform(0.25, 1.0), rng.uniform(-0.75, 0.75)
        objects.append((t, draw_car, (t, u)))
    for _ in range(rng.integers(0, 6)):
        t, side, u = rng.uniform(0.35, 1.0), rng.choice((-1.0, 1.0)), rng.uniform(0.2, 0.7)
        objects.append((t, draw_person, (t, side, u)))
    for _ in range(rng.integers(2, 6)):
        t, side = rng.uniform(0.35, 1.0), rng.choice((-1.0, 1.0))
        objects.append((t, draw_pole, (t, side)))
    return sorted(objects, key=lambda item: item[0])


def draw_scene(rng: np.random.Generator, height: int, width: int, dusk: bool, cloudy: bool
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one street scene: RGB uint8 (H, W, 3), labelIds uint8 (H, W), instanceIds uint16 (H, W).

    ``dusk`` and ``cloudy`` are the two scene-level cues; they change the sky and the labels of
    the context pairs, and nothing else (every other random draw is the same for both values).
    """
    canvas = Canvas(rng, height, width)
    horizon = height * rng.uniform(0.5, 0.56)
    vanish_x = width * rng.uniform(0.4, 0.6)
    road_half = width * rng.uniform(0.28, 0.4)
    walk_left, walk_right = width * rng.uniform(0.08, 0.16, 2)
    street = Street(horizon, vanish_x, road_half, walk_left, walk_right, dusk, cloudy)
    cues = draw_sky(canvas, rng, street)
    draw_buildings(canvas, rng, street)
    draw_sky_cues(canvas, street, cues)
    draw_ground(canvas, rng, street)
    for _, draw, arguments in place_objects(rng):
        draw(canvas, rng, street, *arguments)
    # Camera: exposure varies per image (the same for every cue value), then sensor noise.
    rgb = canvas.rgb * rng.uniform(0.85, 1.1) + rng.normal(0, 0.025, canvas.rgb.shape).astype(np.float32)
    rgb = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    return rgb, canvas.label, canvas.instance
