"""A cloud cue only the whole sky tells: does the FCN stop reading it, does PSPNet still learn it?

This script patches Synthcity v4's drawing code and runs on it only: run it from a worktree of
commit c1e1ab6, the last whose pspnet_edu/data/scene.py draws v4 (``git worktree add ../v4 c1e1ab6``).
Its variant G became Synthcity v5, which scene.py draws since (``--synthcity-v5`` wrote it before).

    python results/lottery/cloud_share.py data DIR [CELL LOW HIGH [SEED]] [--variant-d|-e|-f|-g]  # a data set
    python results/lottery/cloud_share.py data DIR --synthcity-v5 [SEED]  # G as Synthcity v5 would write it
    DATA=DIR RUNS=RUNS PYTHONPATH=. python results/lottery/cloud_share.py run psp|fcn|ctl SEED   # one run
    python results/lottery/cloud_share.py local [CELL LOW HIGH]         # the ideal local reader
    [V4_RUNS=DIR] python results/lottery/cloud_share.py collect OUT.json \
        LABEL=RUNS:CELL:LOW:HIGH[:variant-d|:variant-e|:variant-f|:variant-g] ...

In Synthcity v4 the clouds are a *presence* cue: a cloudy sky has white clouds over 30-50 % of it,
a clear sky none, so almost any window of sky shows which it is. The FCN read it in 4 of 10 seeds
(results/lottery/ablate_ppm_10seeds_v4.json), on green ground up to 96 px below the sky (its dilated layers
reach most of that distance). Here the clouds become a *share*: every sky has clouds, over a share u of the sky
left visible by the buildings, u ~ U(LOW, HIGH) under a "clear" sky (terrain) and 1 - u under a
"cloudy" one (vegetation), HIGH below 0.5 (not checked); the cloud field's cell is H/CELL (v4: H/10; larger
clouds, so that a window of a few of them is a poor sample of the whole). Tried: A = 4 0.35 0.47
(the defaults), B = 3 0.30 0.45, C = 2 0.25 0.42, D = C with ``--variant-d`` (the glow painted
over the clouds, the clouds crisper and whiter), E = C with ``--variant-e`` (D with the glow over
20-30 % of the sky instead of 30-45 %), F = C with ``--variant-f`` (C's drawing with the glow over
45-60 % of the sky, so that about as much glow shows between C's clouds as between v4's) and G = C
with ``--variant-g`` (the glow over 50-65 % of the sky the clouds leave clear, painted after the
cloud mask is known and before the clouds, whose soft edges go over it: a cloudy dusk sky still
shows glow). Whether more than half the visible sky is cloud is what the PPM's 1x1 bin can read
(the averages of a cloud and of a sky feature), and what a window of sky often gets wrong.
Everything else is Synthcity v4's drawing code (u is drawn where v4 drew its cover), the glow
included (drawn before the clouds, so clouds may hide part of it, as in v4 and F; not in D, E, G).
The scenes are not v4's: the larger cloud cells take fewer random numbers, so what is drawn after the sky differs. The
four versions of a scene still differ only in the sky (the cues are drawn whatever their values).

``data --synthcity-v5``: G (2 0.25 0.42 --variant-g) written with the manifest Synthcity v5 is to
write (version 5, V5_CUES), so that runs trained on it now, by the package's own commands, describe
their data as v5 does (a checkpoint's ``data_source``, a run's fingerprint) once scene.py draws G.

``local``: for 200 scenes of v4 and of the variant (no glow: dusk False), the accuracy on the
green ground of an ideal reader that sees only the sky in a band of columns centred on each green
pixel (all sky rows) and thresholds its cloud share at the best of 40 values in 0.02-0.8, picked on
the same scenes (slightly optimistic): 1.0 means a window of that width always tells.
``run``: one DEMO_RECIPE training, PSPNet (psp), without the pyramid (fcn) or the capacity control
(ctl; the ablation's B1236-avg, none and B1236-control), evaluated every 200 steps, one thread, in
RUNS/NAME/seedS (its training seconds: the checkpoint's record, as cross_seeds.py reads it).
``collect``: per variant, over the runs that reached step 800 (a stopped run is left out), pair IoUs
per evaluation, the seeds that learnt each pair (pair IoU >= 0.6 at step 800), mIoU and the thin
classes (PSPNet - FCN of the same seed, from unrounded IoUs), beside the ten-seed ablation on v4;
with V4_RUNS (its run folders, DIR/SETTING/seedS), also how many v4 seeds had learnt each pair at
each evaluation.
"""
from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import pspnet_edu.data.scene as scene
from pspnet_edu.data import CLASS_NAMES, CONTEXT_PAIRS, THIN_CLASSES
from pspnet_edu.data.labels import LABEL_ID
from pspnet_edu.experiments.curves import LEARNT

CELL = 4.0  # the cloud field's cell is H / CELL (v4: H / 10)
SHARE = (0.35, 0.47)  # cloud share of the visible sky under a "clear" sky; 1 - share under a cloudy one
VARIANT_D = False  # True in D and E (not F): the glow painted last, over the clouds; the clouds crisper and whiter
GLOW_COVER = scene.GLOW_COVER  # v4's (0.3, 0.45); E: (0.2, 0.3); F: (0.45, 0.6); G: (0.5, 0.65) of the clear sky
GLOW_ON_CLEAR = False  # True in G: the glow covers GLOW_COVER of the sky the clouds leave clear, under their edges
PAIRS = {"/".join(pair): pair for pair in CONTEXT_PAIRS}  # "bus/train", "terrain/vegetation"
NETWORKS = {"psp": "B1236-avg", "fcn": "none", "ctl": "B1236-control"}  # the ablation's names
_D_TEXT = ("the glow painted over the clouds (v4: under them), the clouds crisper (soft edge 0.02 of the "
           "noise field's range; v4 0.08) and whiter (90 % white; v4 75 %)")
# variant -> (what it draws, glow over the clouds, glow cover, cover of the clear sky only); "" is v4's colours
VARIANTS = {"": ("v4's glow and cloud colours", False, scene.GLOW_COVER, False),
            "d": (_D_TEXT, True, scene.GLOW_COVER, False),
            "e": (_D_TEXT + "; the glow over 20-30 % of the sky (v4 30-45 %)", True, (0.2, 0.3), False),
            "f": ("v4's glow and cloud colours; the glow over 45-60 % of the sky (v4 30-45 %)", False, (0.45, 0.6),
                  False),
            "g": ("v4's glow and cloud colours; the glow over 50-65 % of the sky the clouds leave clear", False,
                  (0.5, 0.65), True)}
FLAGS = {f"--variant-{v}": v for v in VARIANTS if v}  # --variant-d ... on data's command line
V5 = "--synthcity-v5"  # data: G with Synthcity v5's manifest (version 5, these cues)
V5_CUES = {("bus", "train"): "sunset glow: no glow -> bus, orange glow patches over 50-65 % of the sky the clouds "
                             "leave clear (dusk) -> train",
           ("terrain", "vegetation"): "cloud share: clouds over 25-42 % of the visible sky -> terrain, over "
                                      "58-75 % of it -> vegetation"}
_v4_buildings = scene.draw_buildings
_pending: dict = {}


def draw_sky(canvas: scene.Canvas, rng: np.random.Generator, street: scene.Street) -> None:
    """v4's sky and glow; the clouds wait for the buildings (their share is of the sky left visible)."""
    height, width = canvas.height, canvas.width
    rows = (np.arange(height, dtype=np.float32) / street.horizon)[:, None, None]
    top, low = scene.jitter(rng, scene.SKY_TOP, 0.06), scene.jitter(rng, scene.SKY_LOW, 0.05)
    sky = top + (low - top) * np.clip(rows, 0, 1)
    canvas.rgb[:] = sky * (1 + 0.04 * canvas.fine[..., None])
    canvas.label[:] = LABEL_ID["sky"]
    canvas.instance[:] = LABEL_ID["sky"]
    sky_rows = slice(0, int(street.horizon))
    glow_field, glow_cover = scene.value_noise(rng, height, width, height / 8), rng.uniform(*GLOW_COVER)
    cloud_field, share = scene.value_noise(rng, height, width, height / CELL), rng.uniform(*SHARE)
    glow = scene._patches(glow_field, sky_rows, glow_cover) if street.dusk and not GLOW_ON_CLEAR else None
    if glow is not None and not VARIANT_D:
        canvas.rgb[sky_rows] = (canvas.rgb * (1 - glow) + np.float32(scene.GLOW) * glow)[sky_rows]
    _pending["clouds"] = (cloud_field, 1 - share if street.cloudy else share, sky,
                          glow if VARIANT_D else None)
    _pending["glow on clear"] = (glow_field, glow_cover) if street.dusk and GLOW_ON_CLEAR else None


def draw_buildings(canvas: scene.Canvas, rng: np.random.Generator, street: scene.Street) -> None:
    """v4's buildings, then clouds over exactly ``share`` of the sky they leave visible."""
    _v4_buildings(canvas, rng, street)
    cloud_field, share, sky, glow = _pending.pop("clouds")
    visible = (canvas.label == LABEL_ID["sky"]) & (np.arange(canvas.height)[:, None] < int(street.horizon))
    threshold = np.quantile(cloud_field[visible], 1 - share)
    edge, whiteness = (0.02, 0.9) if VARIANT_D else (0.08, 0.75)  # D: crisper, whiter clouds
    white = (np.clip((cloud_field - threshold) / edge + 0.5, 0, 1) * visible)[..., None]  # > 0.5 on `share`
    if (on_clear := _pending.pop("glow on clear")) is not None:  # G: the glow's cover is of the clear sky
        clear = visible & (white[..., 0] <= 0.5)
        under = scene._patches(on_clear[0], clear, on_clear[1]) * visible[..., None]
        canvas.rgb[:] = canvas.rgb * (1 - under) + np.float32(scene.GLOW) * under
    canvas.rgb[:] = canvas.rgb * (1 - white) + ((1 - whiteness) * sky + whiteness * np.float32(0.95)) * white
    if glow is not None:  # VARIANT_D: v4's glow patches, painted on the visible sky, over the clouds
        glow = glow * visible[..., None]
        canvas.rgb[:] = canvas.rgb * (1 - glow) + np.float32(scene.GLOW) * glow
    _pending["white"] = white[..., 0]


def use_cloud_share(cell: float = CELL, share: tuple[float, float] = SHARE, variant: str = "") -> None:
    """Draw Synthcity scenes with the share cue from now on (this process only); variant: a key of VARIANTS."""
    global CELL, SHARE, VARIANT_D, GLOW_COVER, GLOW_ON_CLEAR
    CELL, SHARE = float(cell), (float(share[0]), float(share[1]))
    _, VARIANT_D, GLOW_COVER, GLOW_ON_CLEAR = VARIANTS[variant]
    scene.draw_sky, scene.draw_buildings = draw_sky, draw_buildings


def cloud_mask(seed: int, cloudy: bool) -> tuple[np.ndarray, np.ndarray]:
    """(labelIds, cloud mask) of scene ``seed``: v4 draws no clouds under a clear sky, so there its
    clouds are where the cloudy and the clear version of the scene differ (the same random stream);
    the share cue records its mask (white > 0.5)."""
    rgb, label, _ = scene.draw_scene(np.random.default_rng(seed), 128, 256, False, cloudy)
    if scene.draw_sky is draw_sky:
        return label, _pending.pop("white") > 0.5
    clear, _, _ = scene.draw_scene(np.random.default_rng(seed), 128, 256, False, False)
    return label, np.abs(rgb.astype(np.int16) - clear).sum(-1) > 30


def local_reader(scenes: int = 200, widths: tuple[int, ...] = (32, 64, 96, 128, 192)) -> dict:
    """Accuracy on green pixels of the best threshold on the cloud share of a band of sky columns."""
    thresholds = np.linspace(0.02, 0.8, 40)
    right = {w: np.zeros(len(thresholds)) for w in widths}
    total = 0
    for index in range(scenes):
        cloudy = bool(index % 2)
        label, white = cloud_mask(1000 + index, cloudy)
        sky = label == LABEL_ID["sky"]
        green = (label == LABEL_ID["vegetation"]) | (label == LABEL_ID["terrain"])
        columns = np.nonzero(green.any(0))[0]
        pixels = green.sum(0)[columns]
        total += pixels.sum()
        for w, hits in band_hits(white, sky, columns, pixels, widths, thresholds, cloudy).items():
            right[w] += hits
    return {str(w): round(float(right[w].max() / total), 3) for w in widths}


def band_hits(cue: np.ndarray, within: np.ndarray, columns: np.ndarray, pixels: np.ndarray,
              widths: tuple[int, ...], thresholds: np.ndarray, truth: bool) -> dict[int, np.ndarray]:
    """Per band width, how many of the ``pixels`` (counts in ``columns``) each threshold gets right.

    The reader sees a band of ``width`` columns centred on a column, and says ``True`` where the
    share of its ``within`` pixels that are ``cue`` exceeds the threshold; ``truth`` is the answer.
    """
    cue_sum = np.concatenate([[0], np.cumsum((cue & within).sum(0))])
    within_sum = np.concatenate([[0], np.cumsum(within.sum(0))])
    hits = {}
    for w in widths:
        a, b = np.clip(columns - w // 2, 0, cue.shape[1]), np.clip(columns + w // 2, 0, cue.shape[1])
        share = (cue_sum[b] - cue_sum[a]) / np.maximum(within_sum[b] - within_sum[a], 1)
        hits[w] = (((share[None] > thresholds[:, None]) == truth) * pixels[None]).sum(1)
    return hits


def run(name: str, seed: int) -> None:
    import torch

    from pspnet_edu.experiments.demo import DEMO_RECIPE
    from pspnet_edu.experiments.sweeps import PPM_VARIANTS, with_model
    from pspnet_edu.training import train_from_config

    torch.set_num_threads(1)
    config = with_model(DEMO_RECIPE, **PPM_VARIANTS[NETWORKS[name]])
    config = dataclasses.replace(config, seed=seed, eval_every=200, data=os.environ["DATA"],
                                 out=f"{os.environ['RUNS']}/{name}/seed{seed}")
    start = time.time()
    train_from_config(config, progress=False)
    print(json.dumps({"name": name, "seed": seed, "seconds": round(time.time() - start, 1)}))


def collect_design(runs: Path) -> dict:
    """The runs of one design: RUNS/{psp,fcn,ctl}/seedS/history.json and last.pt."""
    import torch

    from pspnet_edu.experiments.demo import DEMO_RECIPE
    from pspnet_edu.experiments.stats import paired_t

    networks, last_iou = {}, {}
    for name in (n for n in NETWORKS if (runs / n).is_dir()):
        rows = []
        for history_path in sorted((runs / name).glob("seed*/history.json"), key=lambda p: int(p.parent.name[4:])):
            seed = int(history_path.parent.name[4:])
            history = json.loads(history_path.read_text())
            if not history["val"] or history["val"][-1]["iteration"] != DEMO_RECIPE.iters:
                continue  # not finished (still training, or stopped)
            by_step = [dict(zip(history["class_names"], v["iou"])) for v in history["val"]]
            pairs = {p: [round(statistics.mean(iou[c] for c in cs), 3) for iou in by_step] for p, cs in PAIRS.items()}
            seconds = torch.load(history_path.parent / "last.pt", map_location="cpu", weights_only=False)["seconds"]
            steps = [v["iteration"] for v in history["val"]]  # of a finished run
            rows.append({"seed": seed, "pairs": pairs, "miou": round(history["val"][-1]["miou"], 4),
                         "thin": {c: round(by_step[-1][c], 3) for c in THIN_CLASSES},
                         "seconds": round(seconds, 1)})
            last_iou[name, seed] = by_step[-1]
        if not rows:
            continue
        networks[name] = {"steps": steps, "runs": rows,
                          "learnt": {p: [r["seed"] for r in rows if r["pairs"][p][-1] >= LEARNT] for p in PAIRS},
                          "miou_mean": round(statistics.mean(r["miou"] for r in rows), 4)}
    seeds = sorted(seed for name, seed in last_iou if name == "psp" and ("fcn", seed) in last_iou)
    thin = {}
    for c in THIN_CLASSES:
        a, b = [last_iou["psp", s][c] for s in seeds], [last_iou["fcn", s][c] for s in seeds]
        thin[c] = {"mean": round(statistics.mean(a) - statistics.mean(b), 3), "t": round(paired_t(a, b), 2),
                   "seeds_not_below_by_more_than_0.03": sum(x - y >= -0.03 for x, y in zip(a, b))}
    all_four = [s for s in seeds if all(last_iou["psp", s][c] - last_iou["fcn", s][c] >= -0.03 for c in THIN_CLASSES)]
    return {"networks": networks, "thin_psp_minus_fcn": thin, "seeds_thin_none_below_fcn_by_more_than_0.03": all_four}


def v4_by_step(runs: Path) -> dict:
    """How many seeds of the ten-seed ablation had learnt each pair at each evaluation (its run folders)."""
    counts = {}
    for name, setting in NETWORKS.items():
        histories = [json.loads(p.read_text()) for p in sorted((runs / setting).glob("seed*/history.json"))]
        steps = [v["iteration"] for v in histories[0]["val"]]
        counts[name] = {"steps": steps, "seeds": len(histories), **{
            p: [sum(statistics.mean(dict(zip(h["class_names"], h["val"][i]["iou"]))[c] for c in cs) >= LEARNT
                    for h in histories) for i in range(len(steps))] for p, cs in PAIRS.items()}}
    return counts


def collect(out: Path, designs: list[str]) -> None:
    """designs: LABEL=RUNS:CELL:SHARE_LOW:SHARE_HIGH[:variant-X], one per data set tried."""
    from pspnet_edu.provenance import portable_path, provenance, running_command

    v4 = json.loads(Path("results/lottery/ablate_ppm_10seeds_v4.json").read_text())
    v4_learnt = {}
    for name, setting in NETWORKS.items():
        runs = v4["settings"][setting]["runs"]
        v4_learnt[name] = {p: [r["seed"] for r in runs if statistics.mean(
            r["iou"][v4["class_names"].index(c)] for c in cs) >= LEARNT] for p, cs in PAIRS.items()}
    result = {"about": __doc__.strip().splitlines()[0], "threshold": LEARNT,
              "v4_learnt (results/lottery/ablate_ppm_10seeds_v4.json)": v4_learnt,
              "v4_learnt_by_step (V4_RUNS)": v4_by_step(Path(os.environ["V4_RUNS"])) if "V4_RUNS" in os.environ else None,
              "v4_local_reader": local_reader(), "designs": {}}  # before any patching: v4's drawing
    readers = {}  # one local reader per drawing (B on two Synthcity seeds shares its)
    for item in designs:
        label, spec = item.split("=", 1)
        runs, cell, low, high, *tail = spec.split(":")
        variant = {(): "", **{(flag[2:],): v for flag, v in FLAGS.items()}}.get(tuple(tail))
        if variant is None:
            sys.exit(f"unknown variant in {item!r}: end it with :{', :'.join(f[2:] for f in FLAGS)} or nothing")
        use_cloud_share(float(cell), (float(low), float(high)))  # D to G draw C's cloud masks; no glow here
        if (CELL, SHARE) not in readers:
            readers[CELL, SHARE] = local_reader()
        result["designs"][label] = {"cell": f"H/{float(cell):g}", "share": SHARE,
                                    "drawing": VARIANTS[variant][0],
                                    "local_reader": readers[CELL, SHARE], **collect_design(Path(runs))}
    portable = [f"{item.split('=', 1)[0]}={portable_path(item.split('=', 1)[1])}" for item in designs]
    with running_command(["python", "results/lottery/cloud_share.py", "collect", str(out), *portable]):
        result["provenance"] = provenance()  # the run folders' paths without this machine's folders
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({label: {n: v["learnt"] for n, v in d["networks"].items()} for label, d in result["designs"].items()},
                     indent=1))


if __name__ == "__main__":
    if not hasattr(scene, "CLOUD_COVER"):  # v5's scene.py has CLOUD_SHARE instead
        sys.exit("cloud_share.py patches Synthcity v4's drawing code, which this checkout no longer has; "
                 "run it from a worktree of commit c1e1ab6: git worktree add ../v4 c1e1ab6")
    given = [FLAGS[a] for a in sys.argv if a in FLAGS]
    if len(given) > 1:
        sys.exit(f"give one of {', '.join(FLAGS)}, not {len(given)}")
    variant = given[0] if given else ""
    as_v5 = V5 in sys.argv
    arguments = [a for a in sys.argv if a not in FLAGS and a != V5]
    command = arguments[1]
    if as_v5:  # data DIR --synthcity-v5 [SYNTHCITY_SEED]: G, the manifest of v5
        if command != "data" or given or len(arguments) > 4:
            sys.exit(f"{V5} goes with `data DIR [SEED]` only (it is C's cloud share with --variant-g)")
        import pspnet_edu.data.synthetic as synthetic
        synthetic.SYNTHCITY_VERSION = 5
        synthetic.CONTEXT_CUES.update(V5_CUES)
        arguments[3:] = ["2", "0.25", "0.42", *arguments[3:]]
        variant = "g"
    design = [float(a) for a in arguments[3 if command == "data" else 2:]] if command in ("data", "local") else []
    design_args = (design[0], (design[1], design[2])) if design else ()  # CELL SHARE_LOW SHARE_HIGH
    if command == "data":  # data DIR [CELL SHARE_LOW SHARE_HIGH [SYNTHCITY_SEED]] [--variant-X]
        use_cloud_share(*design_args, variant=variant)
        from pspnet_edu.data.synthetic import generate_synthetic
        print(generate_synthetic(arguments[2], seed=int(design[3]) if len(design) > 3 else 0))
    elif command == "run":
        run(arguments[2], int(arguments[3]))
    elif command == "local":  # local [CELL SHARE_LOW SHARE_HIGH]
        v4 = local_reader()
        use_cloud_share(*design_args)
        print(json.dumps({"window_widths_px": "accuracy", "v4": v4, f"share_cue H/{CELL:g} {SHARE}": local_reader()}))
    elif command == "collect":  # collect OUT LABEL=RUNS:CELL:SHARE_LOW:SHARE_HIGH[:variant-X] ...
        collect(Path(arguments[2]), arguments[3:])
    else:
        sys.exit(f"unknown command {command!r}: use data, run, local or collect")
