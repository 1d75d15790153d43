"""Command line: ``python -m microrequests demo [--calls N]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._demo import demo


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m microrequests")
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo", help="pooled vs unpooled calls against an embedded loopback service"
    )
    demo_parser.add_argument(
        "--calls", type=int, default=300, help="calls per client (default 300)"
    )
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be >= 1")
    return demo(args.calls)


if __name__ == "__main__":
    sys.exit(main())
