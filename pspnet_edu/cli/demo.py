"""``pspnet-edu demo``: the main job, PSPNet against its no-PPM baseline on Synthcity (`make demo`).

Argument parsing only: the work is :func:`pspnet_edu.experiments.run_demo`, whose defaults the
options show. ``--no-ppm`` is refused: the demo trains the no-PPM baseline itself, beside PSPNet.
"""

from __future__ import annotations

import argparse

from pspnet_edu.cli.options import (add_training_options, config_from_args, default_of, positive_int, refuse_given,
                                    set_threads)
from pspnet_edu.experiments import DEMO_RECIPE, run_demo
from pspnet_edu.files import check_writable


REFUSED = {"no_ppm": "would turn the demo into the no-PPM baseline against itself: the demo trains that baseline "
                     "beside PSPNet already; drop --no-ppm (or train one with `pspnet-edu train --no-ppm`)"}
OUT, PROCESSES = default_of(run_demo, "out"), default_of(run_demo, "processes")


def run(args: argparse.Namespace) -> int:
    refuse_given(args, REFUSED)
    set_threads(args)
    check_writable(args.out, "--out")  # before the data set is generated on first use
    run_demo(config_from_args(args, DEMO_RECIPE), out=args.out, processes=args.processes)
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register `demo`."""
    parser = subparsers.add_parser(
        "demo", help="the main job: train PSPNet and the no-PPM baseline, compare",
        description="Generate the synthetic set if absent, train the tiny PSPNet and the no-PPM baseline, evaluate "
                    "both, print per-class IoU and `mIoU:`, and save a figure of predictions, errors and training "
                    "curves. Unset options keep the demo's recipe (pspnet_edu.experiments.DEMO_RECIPE). A second "
                    "call reads the finished runs back.")
    add_training_options(parser, DEMO_RECIPE, alpha=True, hidden=REFUSED)
    parser.add_argument("--out", default=OUT, help=f"folder of the two runs and the figure (default {OUT})")
    parser.add_argument("--processes", type=positive_int, default=PROCESSES,
                        help=f"train the two models side by side in this many processes (default {PROCESSES}; 1: one "
                             "after the other)")
    parser.set_defaults(func=run)
