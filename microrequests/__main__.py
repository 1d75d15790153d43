"""Command line: ``python -m microrequests demo [--calls N]``."""

from __future__ import annotations

import argparse
import platform
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
    bench_parser = commands.add_parser(
        "bench",
        help="per-request cost of microrequests vs requests, urllib3 and httpx",
        description="Interleaved benchmark on an embedded loopback service, or on URL.",
    )
    bench_parser.add_argument("url", nargs="?", help="measure this URL instead (GET)")
    bench_parser.add_argument("--requests", type=int, default=2000, help="per client (2000)")
    bench_parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (20)")
    bench_parser.add_argument("--threads", type=int, default=1, help="concurrent senders (1)")
    bench_parser.add_argument("--tls", action="store_true", help="HTTPS, throwaway certificate")
    bench_parser.add_argument(
        "--env-vars", type=int, default=0, help="add N Kubernetes-style environment variables"
    )
    bench_parser.add_argument("--plot", metavar="FILE.png", help="draw p50/p99 per client")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.calls < 1:
            parser.error("--calls must be >= 1")
        return demo(args.calls)
    for name in ("requests", "rounds", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.env_vars < 0:
        parser.error("--env-vars must be >= 0")
    if args.url and args.tls:
        parser.error("--tls is for the embedded service; give an https:// URL instead")
    from ._bench import plot, run, table

    rows, environment_variables = run(
        args.url,
        requests_per_client=args.requests,
        rounds=args.rounds,
        threads=args.threads,
        tls=args.tls,
        env_vars=args.env_vars,
    )
    where = args.url or f"embedded {'HTTPS' if args.tls else 'HTTP'} loopback service"
    print(
        f"bench: GET {where}, {args.requests} requests per client, {args.rounds} rounds, "
        f"{args.threads} thread(s), {environment_variables} environment variables, "
        f"Python {platform.python_version()}"
    )
    print(table(rows))
    if args.plot:
        plot(rows, args.plot, f"GET, {environment_variables} environment variables")
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
