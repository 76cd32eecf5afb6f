"""`pspnet-edu` subcommands: data (being written)."""

from __future__ import annotations

import argparse


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register this module's subcommands (none yet)."""
