"""`pspnet-edu assignments build` and `tag`: student notebooks, and nbgrader's cell metadata.

See :mod:`pspnet_edu.assignments` for what changes in a student notebook and for the
metadata convention.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pspnet_edu


def default_notebooks_dir() -> Path:
    """The repository's ``notebooks/`` next to the package (editable install), else ``./notebooks``."""
    beside_package = Path(pspnet_edu.__file__).resolve().parent.parent / "notebooks"
    return beside_package if beside_package.is_dir() else Path.cwd() / "notebooks"


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``assignments build`` and ``assignments tag``."""
    parser = subparsers.add_parser(
        "assignments",
        help="build student notebooks for a class, tag the solutions for nbgrader",
        description="Instructor tools: student versions of the solution notebooks, and nbgrader's cell metadata.",
    )
    commands = parser.add_subparsers(dest="assignments_command", required=True, metavar="COMMAND")
    src_help = "folder of the solution notebooks (default: the repository's notebooks/, else ./notebooks)"
    build = commands.add_parser(
        "build",
        help="write student notebooks (solutions replaced by stubs, hidden tests removed)",
        description=(
            "Write the student version of every notebook in --src into --out: each "
            "'### BEGIN SOLUTION' ... '### END SOLUTION' region becomes '# YOUR CODE HERE' + "
            "'raise NotImplementedError()', hidden tests are removed, and the outputs of the "
            "cells that changed or use an exercise's names are cleared. A notebook already in "
            "--out is never replaced without --force."
        ),
    )
    build.add_argument("--src", type=Path, default=None, help=src_help)
    build.add_argument("--out", type=Path, required=True, help="output folder, e.g. build/student (not inside --src)")
    build.add_argument(
        "--force", action="store_true",
        help="replace the notebooks of the same name already in --out (they may hold learners' work)",
    )
    build.set_defaults(func=run_build)
    tag = commands.add_parser(
        "tag",
        help="(re)write nbgrader's cell metadata from the markers, in place",
        description=(
            "Set nbgrader's cell metadata (schema 3) in every notebook in --src from its markers: "
            "exercise cells become autograded answers, the check cell after each exercise an "
            "autograder test worth 1 point, markdown answers manually graded answers worth 1 "
            "point; other cells carry none. Only the metadata changes, and only in notebooks "
            "whose metadata is missing or stale, so a second run writes nothing."
        ),
    )
    tag.add_argument("--src", type=Path, default=None, help=src_help)
    tag.add_argument(
        "--check", action="store_true",
        help="write nothing; exit with status 2 naming the first notebook whose metadata is missing or stale",
    )
    tag.set_defaults(func=run_tag)


def run_build(args: argparse.Namespace) -> int:
    """Build the student notebooks and list them."""
    from pspnet_edu.assignments import build_student_notebooks  # nbformat: 1.5 s that other commands need not pay

    src = args.src if args.src is not None else default_notebooks_dir()
    written = build_student_notebooks(src, args.out, force=args.force)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} student notebook{'s' if len(written) != 1 else ''} from {src} in {args.out}")
    return 0


def run_tag(args: argparse.Namespace) -> int:
    """Tag the notebooks (or, with --check, say which one is not tagged)."""
    from pspnet_edu.assignments import tag_notebooks  # nbformat: 1.5 s that other commands need not pay

    src = args.src if args.src is not None else default_notebooks_dir()
    stale = tag_notebooks(src, check_only=args.check)
    if args.check:
        if stale:
            src_option = f" --src {args.src}" if args.src is not None else ""
            print(
                f"pspnet-edu assignments: error: {stale[0]}: nbgrader metadata missing or stale"
                f"{f' (and {len(stale) - 1} more)' if len(stale) > 1 else ''}; run `pspnet-edu assignments tag{src_option}`",
                file=sys.stderr,
            )
            return 2
        print(f"nbgrader metadata up to date in {src}")
        return 0
    for path in stale:
        print(f"tagged {path}")
    print(f"{len(stale)} notebook{'s' if len(stale) != 1 else ''} retagged in {src}")
    return 0
