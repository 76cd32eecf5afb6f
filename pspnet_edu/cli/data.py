"""`pspnet-edu data synthetic | cityscapes-subset`: build the course's datasets.

See data/README.md and notebooks/06_cityscapes_data.ipynb.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from pspnet_edu.cli.options import default_of, seed_value, size_argument
from pspnet_edu.data.subset import build_cityscapes_subset
from pspnet_edu.data.manifest import check_output_name
from pspnet_edu.data.synthetic import (
    SynthcityOptions,
    default_synthetic_root,
    generate_synthetic,
    synthetic_is_complete,
)


def _synthetic(args: argparse.Namespace) -> int:
    out = check_output_name(default_synthetic_root() if args.out is None else args.out)
    options = {"train": args.train, "val": args.val, "size": tuple(args.size), "seed": args.seed}
    described = (f"{args.train} train + {args.val} val Synthcity images of {args.size[0]}x{args.size[1]} "
                 f"(seed {args.seed})")
    if not args.force and synthetic_is_complete(out, **options):
        print(f"already there: {out} holds {described}, complete; nothing to do (pass --force to regenerate)")
        return 0
    start = time.perf_counter()
    path = generate_synthetic(out, **options, force=args.force)
    print(f"wrote {described} to {path} in {time.perf_counter() - start:.1f} s")
    return 0


def _cityscapes_subset(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = build_cityscapes_subset(args.root, args.out, per_city=args.per_city, size=args.size,
                                       splits=tuple(args.splits))
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    print(f"wrote a {args.per_city}-frames-per-city subset of {args.root} at {args.size[0]}x{args.size[1]} to {path}")
    return 0


DEFAULTS = SynthcityOptions()


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register `data synthetic` and `data cityscapes-subset`."""
    data = subparsers.add_parser("data", help="build the synthetic set or a Cityscapes subset",
                                 description="Build the course's datasets (see data/README.md).")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")

    synthetic = commands.add_parser(
        "synthetic", help="generate Synthcity, the embedded synthetic street scenes (Cityscapes layout)",
        description="Generate Synthcity: procedural street scenes in the Cityscapes layout, deterministic "
                    "from the seed. Its bus/train and vegetation/terrain pairs can only be told apart "
                    "by the sky (see data/README.md).")
    synthetic.add_argument("--out", default=None,
                           help="output folder (default: data/synthcity, or $PSPNET_EDU_DATA/synthcity)")
    synthetic.add_argument("--train", type=int, default=DEFAULTS.train, help=f"training images (default {DEFAULTS.train})")
    synthetic.add_argument("--val", type=int, default=DEFAULTS.val, help=f"validation images (default {DEFAULTS.val})")
    synthetic.add_argument("--size", type=size_argument("--size"), default=DEFAULTS.size,
                           help=f"HxW (default {DEFAULTS.size[0]}x{DEFAULTS.size[1]})")
    synthetic.add_argument("--seed", type=seed_value, default=DEFAULTS.seed, help=f"random seed (default {DEFAULTS.seed})")
    synthetic.add_argument("--force", action="store_true",
                           help="regenerate even if the folder already holds this very set (files that "
                                "are not part of the set are never deleted: the command refuses instead)")
    synthetic.set_defaults(func=_synthetic)

    subset = commands.add_parser(
        "cityscapes-subset", help="make a small resized copy of real Cityscapes",
        description="Copy PER_CITY evenly spaced frames of every city, resized (images bilinear, labels "
                    "nearest), into the same layout with a manifest. The source is never modified.")
    subset.add_argument("--root", required=True, help="Cityscapes folder holding leftImg8bit/ and gtFine/")
    subset.add_argument("--out", required=True, help="output folder, e.g. data/cityscapes_subset")
    subset.add_argument("--per-city", type=int, required=True, help="frames per city")
    subset.add_argument("--size", type=size_argument("--size"), required=True, help="HxW, e.g. 256x512")
    splits = default_of(build_cityscapes_subset, "splits")
    subset.add_argument("--splits", nargs="+", default=list(splits), help=f"splits to copy (default: {' '.join(splits)})")
    subset.set_defaults(func=_cityscapes_subset)
