"""The ``pspnet-edu`` command line: the only place in the package that parses arguments.

One module per command group, each with an ``add_parsers(subparsers)`` function; every parser
sets ``func`` to a function taking the parsed namespace. Choices and defaults are read from the
library (presets, precisions, variants, ``TrainConfig``, the library functions' own defaults), never
restated; an option that a command would ignore is refused in one line. Sizes are ``HxW`` (or ``N``).
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
from collections.abc import Sequence

# The commands import torch and torchvision (which brings torch._dynamo and sympy): some 340,000
# objects, and the garbage collector would walk all those made so far five times over while they
# arrive (0.35-0.7 s of every command; AMD EPYC, 2026-12-07). None of them is garbage yet, so
# the collector waits until they are in.
_collecting = gc.isenabled()
gc.disable()
try:
    from pspnet_edu.cli import ablate, assignments, data, demo, evaluate, export, predict, rf, train
    from pspnet_edu.files import describe_os_error
    from pspnet_edu.provenance import running_command
finally:
    if _collecting:
        gc.enable()

COMMANDS = (rf, data, train, evaluate, predict, export, ablate, demo, assignments)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pspnet-edu",
        description="PSPNet for learning: receptive fields, data, training, evaluation, ablations.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parsers(subparsers)
    return parser


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print one clear line and exit with status 2, Ctrl-C one line and 130."""
    args = build_parser().parse_args(argv)
    try:
        with running_command(["pspnet-edu", *(sys.argv[1:] if argv is None else argv)]):
            return int(args.func(args) or 0)
    except (ValueError, OSError) as error:
        # Errors raised on bad input already say what is wrong and how to fix it (OSError:
        # missing files, permissions, a full disk); a traceback would only bury that sentence.
        text = describe_os_error(error) if isinstance(error, OSError) else str(error)
        _say(args, f"error: {text or type(error).__name__}")
        return 2
    except KeyboardInterrupt as stop:  # a second Ctrl-C; what was saved is in the message, if anything
        _say(args, str(stop) or "interrupted")
        return 130  # the shell's convention for "stopped by a signal"


def console() -> int:
    """The ``pspnet-edu`` program (and ``python -m pspnet_edu``): :func:`main`, then a quick exit.

    When a command is done, Python's shutdown tears down every module, and its garbage collector
    walks every object they made: some 340,000 for torch and torchvision (which imports
    ``torch._dynamo`` and sympy), about 0.8 s at the end of every command (AMD EPYC, 2026-12-07;
    ``benchmarks/bench_vs_commit.py``). ``gc.freeze()`` moves them out of the collector's sight
    first; the shutdown still closes files and runs the exit handlers. Only the program does this,
    not :func:`main`, which tests and notebooks call in a process that goes on.
    """
    code = main()
    gc.freeze()
    return code


def _say(args: argparse.Namespace, message: str) -> None:
    """One line on stderr: whitespace folded, and no terminal colour codes (a library's, e.g. torch's)."""
    print(f"pspnet-edu {args.command}: {' '.join(_ANSI_ESCAPE.sub('', message).split())}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console())
