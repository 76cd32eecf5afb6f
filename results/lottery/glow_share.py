"""A glow cue only the whole sky tells: Synthcity v5's glow turned into a share, as v5 did to the clouds.

In Synthcity v5 the glow is a *presence* cue: a dusk sky has orange patches over 50-65 % of the sky
the clouds leave clear, a day sky none, so almost any wide window of sky tells which it is; the
networks without pooling read it in some seeds at the demo budget (the ten-seed ablations:
results/lottery/ablate_ppm_10seeds_175c6c0.json and its 20-seed continuation). Variant H makes it a
*share*, as v5 made the clouds: every sky has glow patches, over a share g of the sky the clouds
leave clear, g ~ U(LOW, HIGH) by day (bus) and 1 - g at dusk (train), with HIGH below 0.5
(SHARE); the patches are large (the glow field's cell is H / CELL, v5: H / 8), so that a window
of sky holds a few of them or none, a poor sample of the whole, and their soft edges (EDGE) are
centred on the share, as the clouds' are. Whether the glow covers more or less of the clear sky
than the blue does is what the PPM's 1x1 bin can read (the averages of a glow and of a blue-sky
feature), and what a window of sky often gets wrong. Everything else is v5's drawing code; the
scenes are not v5's (the larger cells take fewer random numbers, so what is drawn after the sky
differs). The four versions of a scene still differ only in the sky (every number is drawn
whatever the cues; checked on 30 scenes while this was written).

    python results/lottery/glow_share.py data DIR [SEED] [--share LOW HIGH]  # variant H, 300 + 60, 128x256
    python results/lottery/glow_share.py local [SCENES] [--share LOW HIGH]   # the ideal local reader, v5 and H
    pspnet-edu ablate ppm --variants B1236-avg none B1236-control --num-seeds 10 --processes 2 \\
        --threads 2 --eval-every 200 --data DIR --out RUNS  # the ten-seed ablation on H

``local``: for SCENES scenes (default 200; half of them dusk) of v5 and of H, the accuracy on the
long vehicles' pixels of an ideal reader that sees only the sky in a band of columns centred on
each pixel (all sky rows) and thresholds the glow's share of the band's clear sky at the best of 50
values in 0-0.98, picked on the same scenes (slightly optimistic): 1.0 means a band of that width
always tells bus from train.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

import pspnet_edu.data.scene as scene
import pspnet_edu.data.synthetic as synthetic
from cloud_share import band_hits  # the ideal band reader of the clouds, run here on the glow
from pspnet_edu.data.labels import LABEL_ID

CELL = 2.0  # the glow field's cell is H / CELL (v5: H / 8; the clouds' is H / 2)
EDGE = 0.04  # the glow patches' soft edge, in units of the field's range (the clouds': 0.08)
SHARE = (0.25, 0.42)  # the glow's share of the clear sky by day (bus); 1 - share at dusk (train)
H_CUES = {("bus", "train"): "glow share (variant H): orange glow over 25-42 % of the sky the clouds leave clear "
                            "-> bus, over 58-75 % of it -> train",  # set_share rewrites it
          ("terrain", "vegetation"): synthetic.CONTEXT_CUES[("terrain", "vegetation")]}
_v5 = {"draw_sky": scene.draw_sky, "draw_sky_cues": scene.draw_sky_cues}
_last: dict[str, np.ndarray] = {}


def draw_sky(canvas: scene.Canvas, rng: np.random.Generator, street: scene.Street) -> scene.SkyCues:
    """v5's sky; the glow field with large cells and a share drawn whatever the cue (the same stream)."""
    height, width = canvas.height, canvas.width
    sky = scene.paint_sky_gradient(canvas, rng, street)
    glow_field, glow_share = scene.value_noise(rng, height, width, height / CELL), rng.uniform(*SHARE)
    cloud_field, share = scene.value_noise(rng, height, width, height / scene.CLOUD_CELL), rng.uniform(
        *scene.CLOUD_SHARE)
    return scene.SkyCues(sky, glow_field, 1 - glow_share if street.dusk else glow_share, cloud_field,
                         1 - share if street.cloudy else share)


def draw_sky_cues(canvas: scene.Canvas, street: scene.Street, cues: scene.SkyCues) -> None:
    """v5's clouds; the glow painted by day and at dusk, over its share of the clear sky."""
    visible = (canvas.label == LABEL_ID["sky"]) & (np.arange(canvas.height)[:, None] < int(street.horizon))
    threshold = np.quantile(cues.cloud_field[visible], 1 - cues.cloud_share)
    white = (np.clip((cues.cloud_field - threshold) / 0.08 + 0.5, 0, 1) * visible)[..., None]
    clear = visible & (white[..., 0] <= 0.5)
    # Soft edges centred on the share's threshold, as the clouds' (v5's _patches starts its 0.08-wide
    # edge at the threshold, which over large cells leaves far less than the share above 0.5).
    glow_threshold = np.quantile(cues.glow_field[clear], 1 - cues.glow_cover)
    glow = (np.clip((cues.glow_field - glow_threshold) / EDGE + 0.5, 0, 1) * clear)[..., None]
    canvas.rgb[:] = canvas.rgb * (1 - glow) + np.float32(scene.GLOW) * glow
    canvas.rgb[:] = canvas.rgb * (1 - white) + (0.25 * cues.sky + 0.75 * np.float32(0.95)) * white
    _last["glow"], _last["clear"] = glow[..., 0] > 0.5, clear


def draw_v5_sky_cues(canvas: scene.Canvas, street: scene.Street, cues: scene.SkyCues) -> None:
    """v5's own drawing, recording its glow and clear-sky masks for the local reader."""
    visible = (canvas.label == LABEL_ID["sky"]) & (np.arange(canvas.height)[:, None] < int(street.horizon))
    threshold = np.quantile(cues.cloud_field[visible], 1 - cues.cloud_share)
    clear = visible & (np.clip((cues.cloud_field - threshold) / 0.08 + 0.5, 0, 1) <= 0.5)
    glow = scene._patches(cues.glow_field, clear, cues.glow_cover)[..., 0] if street.dusk else np.zeros(clear.shape)
    _v5["draw_sky_cues"](canvas, street, cues)
    _last["glow"], _last["clear"] = (glow * visible) > 0.5, clear


def use(variant: str) -> None:
    """Draw Synthcity scenes as ``variant`` ("v5" or "H") from now on (this process only)."""
    if variant == "H":
        scene.draw_sky, scene.draw_sky_cues = draw_sky, draw_sky_cues
        synthetic.CONTEXT_CUES = H_CUES
    else:
        scene.draw_sky, scene.draw_sky_cues = _v5["draw_sky"], draw_v5_sky_cues


def local_reader(variant: str, scenes: int = 200, widths: tuple[int, ...] = (32, 64, 128, 256)) -> dict:
    """Accuracy on bus / train pixels of the best threshold on the glow share of a band's clear sky."""
    use(variant)
    thresholds = np.linspace(0.0, 0.98, 50)
    right = {w: np.zeros(len(thresholds)) for w in widths}
    total = 0
    for index in range(scenes):
        dusk = bool(index % 2)
        _, label, _ = scene.draw_scene(np.random.default_rng([7, index]), 128, 256, dusk, False)
        vehicles = (label == LABEL_ID["bus"]) | (label == LABEL_ID["train"])
        if not vehicles.any():
            continue
        columns = np.nonzero(vehicles.any(0))[0]
        pixels = vehicles.sum(0)[columns]
        total += pixels.sum()
        for w, hits in band_hits(_last["glow"], _last["clear"], columns, pixels, widths, thresholds, dusk).items():
            right[w] += hits
    return {str(w): round(float(right[w].max() / total), 3) for w in widths}


def set_share(low: float, high: float) -> None:
    """The glow's share of the clear sky by day: U(low, high), high below 0.5 (1 - it at dusk)."""
    global SHARE, H_CUES
    if not 0 <= low <= high < 0.5:
        raise ValueError(f"the share by day must satisfy 0 <= LOW <= HIGH < 0.5, got {low} {high}")
    SHARE = (low, high)
    H_CUES = {**H_CUES, ("bus", "train"): f"glow share (variant H): orange glow over {100 * low:.0f}-"
              f"{100 * high:.0f} % of the sky the clouds leave clear -> bus, over {100 - 100 * high:.0f}-"
              f"{100 - 100 * low:.0f} % of it -> train"}


if __name__ == "__main__":
    start = time.perf_counter()
    command, arguments = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if "--share" in arguments:  # --share LOW HIGH, anywhere after the command
        at = arguments.index("--share")
        set_share(float(arguments[at + 1]), float(arguments[at + 2]))
        del arguments[at:at + 3]
    if command == "data" and arguments:
        use("H")
        folder = synthetic.generate_synthetic(arguments[0], seed=int(arguments[1]) if len(arguments) > 1 else 0)
        print(f"variant H (share {SHARE[0]}-{SHARE[1]} by day) written to {folder} in "
              f"{time.perf_counter() - start:.1f} s")
    elif command == "local":
        scenes = int(arguments[0]) if arguments else 200
        print(json.dumps({"share by day": SHARE, **{variant: local_reader(variant, scenes)
                                                      for variant in ("v5", "H")}}, indent=1))
    else:
        sys.exit(__doc__.split("\n\n")[2])
