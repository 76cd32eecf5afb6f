"""Cars with paints of their own: does the pyramid still spill the long vehicles onto the cars?

In Synthcity v5 the cars are painted from the long vehicles' six paints plus three of their own
(scene.CAR_PAINTS), so colour never tells a car from a bus or a train; PSPNet calls a median 24 % of
the val set's car pixels bus or train, the FCN 16 % (results/lottery/cars_175c6c0.json), and the
car is the thin class where PSPNet falls more than 0.03 behind the FCN in some seeds (5 of 20 at
175c6c0). Variant I paints the cars from nine paints that no long vehicle has (the three v5 cars
already had and six more, none of them near the long vehicles', the one green or the sky), and
changes nothing else: ``rng.integers(9)`` picks the index as v5 does, so every scene is v5's scene,
pixel for pixel and label for label, except for the cars' colours (checked: ``same``). Whether a
bus is a bus or a train is still told by the sky alone.

    python results/lottery/car_paints.py data DIR [SEED] [--val N]  # variant I, 300 + 60 (or N), 128x256
    python results/lottery/car_paints.py same [SCENES]    # v5 and I differ only on car pixels
    pspnet-edu ablate ppm --variants B1236-avg none B1236-control --num-seeds 10 --processes 2 \\
        --threads 2 --eval-every 200 --data DIR --out RUNS  # the ten-seed ablation on I
"""
from __future__ import annotations

import sys
import time

import numpy as np

import pspnet_edu.data.scene as scene
import pspnet_edu.data.synthetic as synthetic
from pspnet_edu.data.labels import LABEL_ID

# Nine, as v5's CAR_PAINTS, so that the same random numbers pick them: black, purple and orange
# (v5's own car paints), then brown, navy, crimson, teal, lilac and pink.
CAR_PAINTS = ((0.1, 0.1, 0.12), (0.45, 0.1, 0.35), (0.9, 0.45, 0.1), (0.35, 0.2, 0.1), (0.1, 0.15, 0.35),
              (0.55, 0.05, 0.2), (0.1, 0.45, 0.5), (0.7, 0.55, 0.75), (0.95, 0.6, 0.6))
_V5_CAR_PAINTS = scene.CAR_PAINTS


def use(variant: str) -> None:
    """Draw Synthcity scenes as ``variant`` ("v5" or "I") from now on (this process only)."""
    assert len(CAR_PAINTS) == len(_V5_CAR_PAINTS) and not set(CAR_PAINTS) & set(scene.VEHICLE_PAINTS)
    scene.CAR_PAINTS = CAR_PAINTS if variant == "I" else _V5_CAR_PAINTS


def same(scenes: int = 50) -> str:
    """Check that v5 and I draw the same scenes: equal labels, equal pixels off the cars."""
    for index in range(scenes):
        drawn = {}
        for variant in ("v5", "I"):
            use(variant)
            drawn[variant] = scene.draw_scene(np.random.default_rng([7, index]), 128, 256, bool(index % 2),
                                              bool(index % 4 // 2))
        (rgb5, label5, inst5), (rgb_i, label_i, inst_i) = drawn["v5"], drawn["I"]
        if not (np.array_equal(label5, label_i) and np.array_equal(inst5, inst_i)):
            return f"scene {index}: the labels differ"
        off_cars = label5 != LABEL_ID["car"]
        if not np.array_equal(rgb5[off_cars], rgb_i[off_cars]):
            return f"scene {index}: pixels off the cars differ"
    return f"{scenes} scenes: identical labels and instances, identical pixels off the cars"


if __name__ == "__main__":
    start = time.perf_counter()
    command, arguments = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    val = 60
    if "--val" in arguments:  # --val N, anywhere after the command: a larger val split, the same train split
        at = arguments.index("--val")
        val = int(arguments[at + 1])
        del arguments[at:at + 2]
    if command == "data" and arguments:
        use("I")
        folder = synthetic.generate_synthetic(arguments[0], val=val,
                                              seed=int(arguments[1]) if len(arguments) > 1 else 0)
        print(f"variant I (cars in paints of their own) written to {folder} in {time.perf_counter() - start:.1f} s")
    elif command == "same":
        print(same(int(arguments[0]) if arguments else 50))
    else:
        sys.exit(__doc__.split("\n\n")[2])
