"""``pspnet-edu ablate alpha | ppm | curves``: the paper's ablations (Tables 1 and 2) at course scale, and learning curves.

Argument parsing only: the sweeps are :mod:`pspnet_edu.experiments.sweeps`, whose defaults the
options show. Options every run would override are refused: ``--seed`` (the runs use seeds
0..N-1, ``--num-seeds N``), and in ``ppm`` the pyramid options (each variant sets them). ``alpha``
sweeps the paper's Table 2 model, the dilated FCN without PPM, unless ``--with-ppm``. See
notebooks/09_ablations.ipynb; the committed results in results/ were made with these commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pspnet_edu.cli.options import (add_training_options, config_from_args, default_of, finite_float, positive_int,
                                    refuse_given, set_threads)
from pspnet_edu.experiments import ALPHAS, DEMO_RECIPE, PPM_VARIANTS, ablate_alpha, ablate_ppm
from pspnet_edu.experiments.curves import CURVE_RECIPE, CURVE_STEPS, CURVE_VARIANTS, learning_curves

BASE = DEMO_RECIPE  # the sweeps run at the demo's size and recipe
SEEDS = {"seed": "does not apply: the ablations train seeds 0..N-1 of every setting; use --num-seeds N"}
ALPHA_REFUSED = {**SEEDS, "no_ppm": "is the alpha sweep's default already (the paper's Table 2 model, the dilated FCN "
                                    "without PPM); drop it, or pass --with-ppm to sweep PSPNet itself"}
PYRAMID = "shape the PPM, which the alpha sweep leaves out (paper Table 2); add --with-ppm or drop them"
PPM_REFUSED = {**SEEDS, **dict.fromkeys(("no_ppm", "bins", "pooling"),
                                        "is set by every variant of the PPM ablation; choose them with --variants")}


def _alpha(args: argparse.Namespace) -> int:
    refuse_given(args, ALPHA_REFUSED)
    if not args.with_ppm and any(v is not None for v in (args.bins, args.pooling, args.ppm_channels)):
        raise ValueError(f"--bins, --pooling and --ppm-channels {PYRAMID}")
    set_threads(args)
    ablate_alpha(config_from_args(args, BASE), alphas=args.alphas, seeds=args.num_seeds, out=args.out,
                 with_ppm=args.with_ppm, processes=args.processes)
    return 0


def _ppm(args: argparse.Namespace) -> int:
    refuse_given(args, PPM_REFUSED)
    set_threads(args)
    unknown = sorted(set(args.variants) - set(PPM_VARIANTS))
    if unknown:  # before the data is generated
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(PPM_VARIANTS)}")
    ablate_ppm(config_from_args(args, BASE), variants=args.variants, seeds=args.num_seeds, out=args.out,
               processes=args.processes)
    return 0

CURVES_REFUSED = {**PPM_REFUSED, "iters": "is set by --steps (the runs train to the last step)"}


def _curves(args: argparse.Namespace) -> int:
    refuse_given(args, CURVES_REFUSED)
    set_threads(args)
    unknown = sorted(set(args.variants) - set(PPM_VARIANTS))
    if unknown:  # before the data is generated
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(PPM_VARIANTS)}")
    if args.steps != sorted(set(args.steps)):
        raise ValueError(f"--steps must be increasing, e.g. {' '.join(map(str, CURVE_STEPS))}; got {args.steps}")
    learning_curves(config_from_args(args, CURVE_RECIPE), variants=args.variants, seeds=args.num_seeds,
                    steps=args.steps, out=args.out, processes=args.processes, reuse=args.reuse)
    return 0


def _add_sweep_options(parser: argparse.ArgumentParser, sweep: Callable[..., Any]) -> None:
    """--num-seeds, --out and --processes, with the defaults of the library's ``sweep`` function."""
    seeds, out, processes = (default_of(sweep, name) for name in ("seeds", "out", "processes"))
    parser.add_argument("--num-seeds", type=positive_int, default=seeds,
                        help=f"train seeds 0..N-1 of every setting (default {seeds})")
    parser.add_argument("--out", default=out, help=f"folder of the runs, results.json and the figure (default {out})")
    parser.add_argument("--processes", type=positive_int, default=processes,
                        help=f"runs trained at a time, each in its own process with a share of the threads "
                             f"(default {processes})")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register `ablate alpha`, `ablate ppm` and `ablate curves`."""
    ablate = subparsers.add_parser("ablate", help="the paper's ablations: alpha sweep, PPM variants",
                                   description="Re-run the paper's ablations (Tables 1 and 2) at course scale, with "
                                               "the demo's recipe unless options say otherwise.")
    commands = ablate.add_subparsers(dest="ablate_command", required=True, metavar="ABLATION")
    parser = commands.add_parser("alpha", help="sweep the auxiliary loss weight (paper Table 2)")
    add_training_options(parser, BASE, hidden=ALPHA_REFUSED)
    parser.add_argument("--alphas", type=finite_float, nargs="+", default=list(ALPHAS),
                        help=f"alphas to sweep (default {' '.join(f'{a:g}' for a in ALPHAS)})")
    parser.add_argument("--with-ppm", action="store_true",
                        help="sweep PSPNet itself (default: the dilated FCN without PPM, as in the paper's Table 2)")
    _add_sweep_options(parser, ablate_alpha)
    parser.set_defaults(func=_alpha)
    parser = commands.add_parser("ppm", help="no PPM vs B1 vs B1236, average vs max pooling, a capacity control")
    add_training_options(parser, BASE, hidden=PPM_REFUSED)
    parser.add_argument("--variants", nargs="+", default=list(PPM_VARIANTS),
                        help=f"variants (default: all of {' '.join(PPM_VARIANTS)})")
    _add_sweep_options(parser, ablate_ppm)
    parser.set_defaults(func=_ppm)
    parser = commands.add_parser("curves", help="when each network learns each context pair, and the FCN's "
                                                 "effective receptive field along training")
    add_training_options(parser, CURVE_RECIPE, hidden=CURVES_REFUSED)
    parser.add_argument("--variants", nargs="+", default=list(CURVE_VARIANTS),
                        help=f"variants (default {' '.join(CURVE_VARIANTS)}; any of {' '.join(PPM_VARIANTS)})")
    steps = default_of(learning_curves, "steps")
    parser.add_argument("--steps", type=positive_int, nargs="+", default=list(steps),
                        help=f"steps at which the weights are kept and the effective field measured; the runs "
                             f"train to the last (default {' '.join(map(str, steps))})")
    parser.add_argument("--reuse", metavar="RESULTS_JSON",
                        help="an earlier results file of this command (e.g. results/curves.json): its runs of the "
                             "same settings are kept and only the seeds it lacks are trained")
    _add_sweep_options(parser, learning_curves)
    parser.set_defaults(func=_curves)
