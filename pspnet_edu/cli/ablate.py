"""``pspnet-edu ablate alpha | ppm``: the paper's ablations (Tables 1 and 2) at course scale.

Argument parsing only: the sweeps are :mod:`pspnet_edu.experiments.sweeps`. See
notebooks/09_ablations.ipynb; the committed results in results/ were made with these commands.
"""

from __future__ import annotations

import argparse

from pspnet_edu.cli.options import add_training_options, config_from_args, finite_float, positive_int, set_threads
from pspnet_edu.experiments import ALPHAS, DEMO_RECIPE, PPM_VARIANTS, ablate_alpha, ablate_ppm

BASE = DEMO_RECIPE  # the sweeps run at the demo's size and recipe
DEFAULT_SEEDS = 2


def _alpha(args: argparse.Namespace) -> int:
    set_threads(args)
    ablate_alpha(config_from_args(args, BASE), alphas=args.alphas, seeds=args.seeds, out=args.out,
                 with_ppm=args.with_ppm, processes=args.processes)
    return 0


def _ppm(args: argparse.Namespace) -> int:
    set_threads(args)
    unknown = sorted(set(args.variants) - set(PPM_VARIANTS))
    if unknown:  # before the data is generated
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(PPM_VARIANTS)}")
    ablate_ppm(config_from_args(args, BASE), variants=args.variants, seeds=args.seeds, out=args.out,
               processes=args.processes)
    return 0


def _add_processes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processes", type=positive_int, default=1,
                        help="runs trained at a time, each in its own process with a share of the threads (default 1)")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register `ablate alpha` and `ablate ppm`."""
    ablate = subparsers.add_parser("ablate", help="the paper's ablations: alpha sweep, PPM variants",
                                   description="Re-run the paper's ablations (Tables 1 and 2) at course scale, with "
                                               "the demo's recipe unless options say otherwise.")
    commands = ablate.add_subparsers(dest="ablate_command", required=True, metavar="ABLATION")
    parser = commands.add_parser("alpha", help="sweep the auxiliary loss weight (paper Table 2)")
    add_training_options(parser, BASE)
    parser.add_argument("--alphas", type=finite_float, nargs="+", default=list(ALPHAS),
                        help=f"alphas to sweep (default {' '.join(f'{a:g}' for a in ALPHAS)})")
    parser.add_argument("--seeds", type=positive_int, default=DEFAULT_SEEDS,
                        help=f"seeds 0..N-1 per setting (default {DEFAULT_SEEDS})")
    parser.add_argument("--with-ppm", action="store_true",
                        help="sweep PSPNet itself (default: the dilated FCN without PPM, as in the paper's Table 2)")
    parser.add_argument("--out", default="runs/ablate_alpha")
    _add_processes(parser)
    parser.set_defaults(func=_alpha)
    parser = commands.add_parser("ppm", help="no PPM vs B1 vs B1236, average vs max pooling, a capacity control")
    add_training_options(parser, BASE)
    parser.add_argument("--variants", nargs="+", default=list(PPM_VARIANTS),
                        help=f"variants (default: all of {' '.join(PPM_VARIANTS)})")
    parser.add_argument("--seeds", type=positive_int, default=DEFAULT_SEEDS,
                        help=f"seeds 0..N-1 per setting (default {DEFAULT_SEEDS})")
    parser.add_argument("--out", default="runs/ablate_ppm")
    _add_processes(parser)
    parser.set_defaults(func=_ppm)
