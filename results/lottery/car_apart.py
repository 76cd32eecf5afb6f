"""Cars kept apart from the long vehicles: is the car's contact with a bus or a train what PSPNet loses?

PSPNet calls a median 24 % of Synthcity v5's val car pixels bus or train (the FCN 16 %;
results/lottery/cars_175c6c0.json), and 90 % of them lie within 8 px of a true bus or train; with
paints of their own (variant I, car_paints.py) it still calls 17 %. Variant J draws every scene of
v5 with the same random numbers, but a car whose box, widened by ``MARGIN`` pixels on every side,
would touch a long vehicle (its whole silhouette, wherever it is drawn, nearer or farther) is moved
sideways to the nearest place on the road where it touches none (its centre within v5's range,
u in [-0.75, 0.75]); where there is no such place, it is not drawn. Everything else is v5's: the
sky and its cues, the long vehicles, people, poles, each car's size and paint (checked: ``same``).

    python results/lottery/car_apart.py data DIR [SEED] [--val N]  # variant J, 300 + 60 (or N), 128x256
    python results/lottery/car_apart.py same [SCENES]    # J and v5 differ only on the cars' pixels
    python results/lottery/car_apart.py contact [ROOT]   # how many of a set's cars meet a bus or train
    python results/lottery/car_apart.py aspect LOW HIGH [SCENES]  # the same with shorter or longer long vehicles
    pspnet-edu ablate ppm --variants B1236-avg none B1236-control --num-seeds 10 --processes 2 \\
        --threads 2 --eval-every 200 --data DIR --out RUNS  # the ten-seed ablation on J
"""
from __future__ import annotations

import time

import numpy as np

import pspnet_edu.data.scene as scene
import pspnet_edu.data.synthetic as synthetic
from pspnet_edu.data.labels import LABEL_ID

MARGIN = 8  # pixels: one feature pixel at output stride 8, and cars.py's "near"
U_RANGE = 0.75  # v5 places a car's centre at u in [-0.75, 0.75] of the road's half-width at its depth
_V5 = {"draw_scene": scene.draw_scene, "draw_long_vehicle": scene.draw_long_vehicle, "draw_car": scene.draw_car}
LONG_VEHICLES = (LABEL_ID["bus"], LABEL_ID["train"])
counts = {"cars": 0, "moved": 0, "dropped": 0}


def _peek_size(rng: np.random.Generator, street: scene.Street, height: int, t: float) -> tuple[float, float]:
    """The height and width v5's draw_car is about to draw, read from a copy of the generator."""
    peek = np.random.Generator(type(rng.bit_generator)())
    peek.bit_generator.state = rng.bit_generator.state
    h = t * street.ground(height) * peek.uniform(0.4, 0.5)
    return h, h * peek.uniform(1.6, 2.4)


def _free_shift(silhouettes: np.ndarray, street: scene.Street, t: float, u: float, h: float, w: float
                ) -> float | None:
    """The smallest sideways shift (pixels) that keeps the car's widened box off every long vehicle."""
    bottom = street.horizon + t * street.ground(silhouettes.shape[0])
    y0, y1 = max(int(bottom - h) - MARGIN, 0), max(int(np.ceil(bottom)) + MARGIN, 0)
    rows = silhouettes[y0:y1].any(axis=0)  # the columns a long vehicle takes in the car's rows
    centre, reach = street.vanish_x + t * street.road_half * u, t * street.road_half * U_RANGE
    for step in range(2 * silhouettes.shape[1]):
        for shift in ((step,) if step == 0 else (step, -step)):
            x = centre + shift
            if abs(x - street.vanish_x) > reach:
                continue
            x0, x1 = int(np.floor(x - w / 2)) - MARGIN, int(np.ceil(x + w / 2)) + MARGIN
            if not rows[max(x0, 0):max(x1, 0)].any():
                return float(shift)
    return None


def draw_scene_apart(rng: np.random.Generator, height: int, width: int, dusk: bool, cloudy: bool
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """v5's scene with the cars kept ``MARGIN`` px apart from the long vehicles (module docstring).

    Drawn twice from the same generator state: once as v5, to record the long vehicles'
    silhouettes, then again with the cars placed against them.
    """
    start = rng.bit_generator.state
    silhouettes = np.zeros((height, width), dtype=bool)

    def recording(canvas, rng, street, t, u):
        before = canvas.instance.copy()
        _V5["draw_long_vehicle"](canvas, rng, street, t, u)
        silhouettes[(canvas.instance != before) & np.isin(canvas.label, LONG_VEHICLES)] = True

    def placed_car(canvas, rng, street, t, u):
        h, w = _peek_size(rng, street, canvas.height, t)
        shift = _free_shift(silhouettes, street, t, u, h, w)
        counts["cars"] += 1
        if shift is None:  # no free place: draw it on a copy (the same random numbers), keep nothing
            counts["dropped"] += 1
            kept = (canvas.rgb.copy(), canvas.label.copy(), canvas.instance.copy(), dict(canvas._instances))
            _V5["draw_car"](canvas, rng, street, t, u)
            canvas.rgb, canvas.label, canvas.instance, canvas._instances = kept
            return
        counts["moved"] += shift != 0
        _V5["draw_car"](canvas, rng, street, t, u + shift / (t * street.road_half))

    try:
        scene.draw_long_vehicle = recording
        _V5["draw_scene"](rng, height, width, dusk, cloudy)
        rng.bit_generator.state = start
        scene.draw_long_vehicle, scene.draw_car = _V5["draw_long_vehicle"], placed_car
        return _V5["draw_scene"](rng, height, width, dusk, cloudy)
    finally:
        scene.draw_long_vehicle, scene.draw_car = _V5["draw_long_vehicle"], _V5["draw_car"]


def use(variant: str) -> None:
    """Draw Synthcity scenes as ``variant`` ("v5" or "J") from now on (this process only)."""
    chosen = draw_scene_apart if variant == "J" else _V5["draw_scene"]
    scene.draw_scene = synthetic.draw_scene = chosen


def _distance_apart(label: np.ndarray) -> int:
    """The smallest chessboard distance from a car pixel to a bus or train pixel (large when none)."""
    cars, vehicles = np.argwhere(label == LABEL_ID["car"]), np.argwhere(np.isin(label, LONG_VEHICLES))
    if len(cars) == 0 or len(vehicles) == 0:
        return 10 ** 6
    return int(min(np.abs(vehicles - car).max(axis=1).min() for car in cars))


def same(scenes: int = 50) -> str:
    """Check J against v5: equal off the cars of both, no car within MARGIN of a long vehicle in J."""
    car = LABEL_ID["car"]
    pixels = {"v5": 0, "J": 0}
    for index in range(scenes):
        drawn = {}
        for variant in ("v5", "J"):
            use(variant)
            drawn[variant] = scene.draw_scene(np.random.default_rng([7, index]), 128, 256, bool(index % 2),
                                              bool(index % 4 // 2))
            pixels[variant] += int((drawn[variant][1] == car).sum())
        (rgb5, label5, inst5), (rgb_j, label_j, inst_j) = drawn["v5"], drawn["J"]
        off_cars = (label5 != car) & (label_j != car)
        if not (np.array_equal(label5[off_cars], label_j[off_cars]) and np.array_equal(rgb5[off_cars], rgb_j[off_cars])):
            return f"scene {index}: pixels off the cars differ"
        if _distance_apart(label_j) <= MARGIN:
            return f"scene {index}: a car within {MARGIN} px of a long vehicle"
    use("v5")
    return (f"{scenes} scenes: identical off the cars; in J no car within {MARGIN} px of a bus or train; "
            f"of {counts['cars']} cars {counts['moved']} moved, {counts['dropped']} not drawn; car pixels "
            f"{pixels['J']} against v5's {pixels['v5']} ({pixels['J'] / pixels['v5']:.2f})")


def _near_vehicles(label: np.ndarray) -> np.ndarray:
    """The pixels within MARGIN (chessboard distance) of a bus or train pixel."""
    import torch
    import torch.nn.functional as F

    vehicles = torch.from_numpy(np.isin(label, LONG_VEHICLES)).float()[None, None]
    return F.max_pool2d(vehicles, 2 * MARGIN + 1, 1, MARGIN)[0, 0].numpy() > 0


def aspect(low: float, high: float, scenes: int = 200) -> str:
    """In ``scenes`` v5 scenes with the long vehicles ``low``-``high`` times as wide as high (v5: 4-6):
    the cars within MARGIN of one, and the pixel shares of cars and of long vehicles."""
    scene.LONG_VEHICLE_ASPECT = (low, high)
    cars = near_cars = car_pixels = near_pixels = vehicle_pixels = 0
    for index in range(scenes):
        _, label, instance = scene.draw_scene(np.random.default_rng([7, index]), 128, 256, bool(index % 2),
                                              bool(index % 4 // 2))
        near, car = _near_vehicles(label), label == LABEL_ID["car"]
        car_pixels, near_pixels = car_pixels + int(car.sum()), near_pixels + int((car & near).sum())
        vehicle_pixels += int(np.isin(label, LONG_VEHICLES).sum())
        for one in np.unique(instance[car]):
            cars, near_cars = cars + 1, near_cars + bool((near & (instance == one)).any())
    total = scenes * 128 * 256
    return (f"long vehicles {low:g}-{high:g} times as wide as high, {scenes} scenes: {near_cars} of {cars} cars "
            f"({near_cars / cars:.2f}) and {near_pixels / car_pixels:.2f} of the car pixels within {MARGIN} px of one; "
            f"pixel shares: cars {car_pixels / total:.3f}, bus and train {vehicle_pixels / total:.3f}")


def contact(root: str = "data/synthcity") -> str:
    """Of a Cityscapes-layout set's car pixels and car instances, the share within MARGIN px of a bus or train pixel."""
    from pathlib import Path

    from PIL import Image

    lines = []
    for split in ("train", "val"):
        pixels = near_pixels = instances = near_instances = 0
        for path in sorted(Path(root, "gtFine", split).glob("*/*_labelIds.png")):
            label = np.array(Image.open(path))
            instance = np.array(Image.open(str(path).replace("_labelIds", "_instanceIds")))
            near = _near_vehicles(label)
            cars = label == LABEL_ID["car"]
            pixels, near_pixels = pixels + int(cars.sum()), near_pixels + int((cars & near).sum())
            for car in np.unique(instance[cars]):
                instances += 1
                near_instances += bool((near & (instance == car)).any())
        lines.append(f"{split}: {near_pixels / pixels:.3f} of {pixels} car pixels and {near_instances} of {instances} "
                     f"cars ({near_instances / instances:.2f}) within {MARGIN} px of a bus or train")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], usage=__doc__.split("\n\n")[2])
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data")
    data.add_argument("out")
    data.add_argument("seed", type=int, nargs="?", default=0)
    data.add_argument("--val", type=int, default=60, help="val images (a larger val split, the same train split)")
    commands.add_parser("same").add_argument("scenes", type=int, nargs="?", default=50)
    commands.add_parser("contact").add_argument("root", nargs="?", default="data/synthcity")
    shape = commands.add_parser("aspect")
    shape.add_argument("low", type=float)
    shape.add_argument("high", type=float)
    shape.add_argument("scenes", type=int, nargs="?", default=200)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.command == "data":
        use("J")
        folder = synthetic.generate_synthetic(args.out, val=args.val, seed=args.seed)
        print(f"variant J (cars apart from the long vehicles) written to {folder} in {time.perf_counter() - start:.1f} s;"
              f" of {counts['cars']} cars {counts['moved']} moved, {counts['dropped']} not drawn")
    elif args.command == "same":
        print(same(args.scenes))
    elif args.command == "contact":
        print(contact(args.root))
    else:
        print(aspect(args.low, args.high, args.scenes))


if __name__ == "__main__":
    main()
