"""``python -m stress [--quick] [--duration S] [--only NAME ...]``.

Runs the stress scenarios one after another on loopback, prints one line of
figures per scenario, and exits 1 if any scenario lost a request, shared a
connection between processes, leaked a socket, or hung.
"""

from __future__ import annotations

import argparse
import faulthandler
import sys
import threading
import time
from collections.abc import Sequence

from ._scenarios import SCENARIOS, Scale


def _progress(name: str, done: threading.Event) -> None:
    started = time.monotonic()
    while not done.wait(5.0):
        print(f"  ... {name}: {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short CI run (under ~60 s)")
    parser.add_argument(
        "--duration", type=float, help="seconds for the time-bound scenarios (soak runs)"
    )
    parser.add_argument("--seed", type=int, help="seed of the fault proxy (default: fixed)")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="run only these")
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be > 0")
    scale = Scale.pick(args.quick, args.duration)
    if args.seed is not None:
        scale.seed = args.seed
    names = args.only or list(SCENARIOS)
    # Whatever happens, the run stops by itself: a hang dumps every thread's
    # stack and exits non-zero.
    budget = 180 * len(names) + 10 * (args.duration or 0) * len(names)
    faulthandler.dump_traceback_later(budget, exit=True)
    print(f"stress: {'quick' if args.quick else 'default'} run of {len(names)} scenario(s)")
    failed = 0
    started = time.monotonic()
    for name in names:
        print(f"> {name}", file=sys.stderr, flush=True)
        done = threading.Event()
        ticker = threading.Thread(target=_progress, args=(name, done), daemon=True)
        ticker.start()
        try:
            result = SCENARIOS[name](scale)
        finally:
            done.set()
            ticker.join()
        print(result.line(), flush=True)
        failed += bool(result.problems)
    faulthandler.cancel_dump_traceback_later()
    print(f"stress: {len(names) - failed} ok, {failed} failed in {time.monotonic() - started:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
