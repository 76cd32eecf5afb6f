"""``pspnet-edu train``: train PSPNet with the paper's recipe; resumable, and DDP under torchrun.

Argument parsing only: the work is done by :func:`pspnet_edu.training.train_from_config`.
See notebooks/07_training.ipynb and 10_scaling_up.ipynb.
"""

from __future__ import annotations

import argparse
import os

from pspnet_edu.cli.options import add_training_options, config_from_args, set_threads
from pspnet_edu.training import CHECKPOINT_NAME, TrainConfig, train_from_config

BASE = TrainConfig()


def run(args: argparse.Namespace) -> int:
    set_threads(args)
    config = config_from_args(args, BASE, out=args.out, checkpoint_every=args.checkpoint_every)
    result = train_from_config(config, resume=args.resume, force=args.force)
    if result.interrupted:
        return 130  # the shell's convention for "stopped by a signal"
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only rank 0 reports, as it alone writes the run folder
    if result.final is not None:
        print(f"final val mIoU: {result.final['miou']:.4f}")
    print(f"checkpoint: {result.checkpoint}")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register `train`."""
    parser = subparsers.add_parser(
        "train", help="train PSPNet (poly LR, auxiliary loss); resumable",
        description=f"Train PSPNet with SGD, the poly policy and the auxiliary loss. Writes OUT/{CHECKPOINT_NAME}, "
                    "OUT/history.json, OUT/history.csv and OUT/run.json. Ctrl-C saves and stops; --resume continues "
                    "exactly. Runs under torchrun for DDP.")
    add_training_options(parser, BASE, alpha=True)
    parser.add_argument("--out", default=BASE.out, help=f"run folder (default {BASE.out})")
    parser.add_argument("--resume", action="store_true", help=f"continue the run in --out from its {CHECKPOINT_NAME}")
    parser.add_argument("--force", action="store_true",
                        help="train again from scratch in a run folder that holds a run (its own files are replaced)")
    parser.add_argument("--checkpoint-every", type=int, default=BASE.checkpoint_every,
                        help=f"save {CHECKPOINT_NAME} every N iterations (default {BASE.checkpoint_every}: at the end)")
    parser.set_defaults(func=run)
