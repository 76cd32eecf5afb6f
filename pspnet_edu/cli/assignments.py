"""`pspnet-edu assignments build`: write the student versions of the lesson notebooks.

See :mod:`pspnet_edu.assignments` for what changes in a student notebook.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pspnet_edu
from pspnet_edu.assignments import build_student_notebooks


def default_notebooks_dir() -> Path:
    """The repository's ``notebooks/`` next to the package (editable install), else ``./notebooks``."""
    beside_package = Path(pspnet_edu.__file__).resolve().parent.parent / "notebooks"
    return beside_package if beside_package.is_dir() else Path.cwd() / "notebooks"


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``assignments build``."""
    parser = subparsers.add_parser(
        "assignments",
        help="build student notebooks for a class",
        description="Instructor tools: student versions of the solution notebooks.",
    )
    commands = parser.add_subparsers(dest="assignments_command", required=True, metavar="COMMAND")
    build = commands.add_parser(
        "build",
        help="write student notebooks (solutions replaced by stubs, hidden tests removed)",
        description=(
            "Write the student version of every notebook in --src into --out: each "
            "'### BEGIN SOLUTION' ... '### END SOLUTION' region becomes '# YOUR CODE HERE' + "
            "'raise NotImplementedError()', hidden tests are removed, and the outputs of the "
            "cells that changed or use an exercise's names are cleared."
        ),
    )
    build.add_argument(
        "--src", type=Path, default=None,
        help="folder of the solution notebooks (default: the repository's notebooks/, else ./notebooks)",
    )
    build.add_argument("--out", type=Path, required=True, help="output folder, e.g. build/student (not inside --src)")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    """Build the student notebooks and list them."""
    src = args.src if args.src is not None else default_notebooks_dir()
    written = build_student_notebooks(src, args.out)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} student notebook{'s' if len(written) != 1 else ''} from {src} in {args.out}")
    return 0
