"""The ``persidict`` command line (``python -m persidict``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return the exit status."""
    parser = argparse.ArgumentParser(prog="persidict", description="Persistent dictionaries for distributed work.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="show the main job on a temporary folder and in memory")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        run_demo()
    return 0
