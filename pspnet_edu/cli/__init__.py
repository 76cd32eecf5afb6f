"""The ``pspnet-edu`` command line. The only place in the package that parses arguments.

Each group of subcommands lives in its own module with an ``add_parsers(subparsers)``
function; every parser sets ``func`` to a function taking the parsed namespace.
Heavy imports (torch, the model, the data) happen inside those functions so that
``pspnet-edu --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pspnet_edu.cli import assignments, data, rf, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pspnet-edu",
        description="PSPNet for learning: receptive fields, data, training, evaluation, ablations.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (rf, data, train, assignments):
        module.add_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print one clear line and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        # Errors raised on bad input already say what is wrong and how to fix it;
        # a traceback would only bury that sentence.
        print(f"pspnet-edu {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
