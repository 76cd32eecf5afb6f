"""``pspnet-edu export``: a finished run as a small committed model and its sidecar (see training.export).

``--precision`` names the weights' storage; its choices and default are :mod:`pspnet_edu.training.export`'s.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pspnet_edu.cli.options import add_threads_option, default_of, set_threads
from pspnet_edu.training.export import EXPORT_PRECISIONS, check_export_target, export_run, sidecar_path


def run(args: argparse.Namespace) -> int:
    set_threads(args)
    out = Path(args.out)
    check_export_target(out)
    existing = [p for p in (out, sidecar_path(out)) if os.path.lexists(p)]  # a dangling link is in the way too
    if existing and not args.force:
        raise FileExistsError(f"{existing[0]} already exists; pass --force to overwrite it or choose another --out")
    sidecar = export_run(args.checkpoint, out, precision=args.precision, data=args.data)
    print(f"wrote {out} and {sidecar_path(out)}: val mIoU {sidecar['val_miou']:.4f}")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register `export`."""
    parser = subparsers.add_parser("export", help="a finished run as small weights + a sidecar JSON",
                                   description="Write OUT (the weights, config, history) and OUT.json (the val mIoU "
                                               "of the exported file, the command, the recipe, the time).")
    parser.add_argument("--checkpoint", required=True, help="RUN_DIR/last.pt of a finished run")
    parser.add_argument("--out", required=True, help="e.g. data/checkpoints/pspnet_tiny.pt")
    precision = default_of(export_run, "precision")
    parser.add_argument("--precision", choices=EXPORT_PRECISIONS, default=precision,
                        help=f"the weights' storage: fp16 is half the size of fp32 (default {precision})")
    parser.add_argument("--data", help="where the run's training data is now, if its folder moved (checked: the "
                                       "same data; default: the folder the run names)")
    parser.add_argument("--force", action="store_true", help="overwrite OUT and OUT.json")
    add_threads_option(parser)
    parser.set_defaults(func=run)
