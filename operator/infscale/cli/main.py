"""Entry point of the ``infscale`` command."""

from __future__ import annotations

import argparse
import sys

import infscale


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; subcommands are added here as they land."""
    parser = argparse.ArgumentParser(prog="infscale", description=infscale.__doc__)
    parser.add_argument("--version", action="version", version=f"infscale {infscale.__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help(sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
