"""``python -m microrequests demo``: pooled versus unpooled, counted by the server."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import NamedTuple

import requests

from ._loopback import PID_HEADER, LoopbackServer
from ._manager import close_all, init
from ._stats import stats


class _Row(NamedTuple):
    client: str
    requests: int
    connections: int
    seconds: float


def _measure(
    server: LoopbackServer, client: str, calls: int, get: Callable[[str], requests.Response]
) -> _Row:
    before = server.stats()
    started = time.perf_counter()
    for _ in range(calls):
        get(server.url + "/demo").raise_for_status()
    elapsed = time.perf_counter() - started
    after = server.stats()
    return _Row(client, after.requests - before.requests, after.opened - before.opened, elapsed)


def demo(calls: int = 300) -> int:
    """Print requests made against TCP connections opened, both ways."""
    headers = {PID_HEADER: str(os.getpid())}
    with LoopbackServer() as server:
        print(f"microrequests demo: {calls} GET calls against {server.url} (embedded service)")
        pooled = _measure(
            server,
            "microrequests.init().get()",
            calls,
            lambda url: init().get(url, headers=headers),
        )
        host = f"http://{server.host}:{server.port}"
        client_side = next(s.hosts[host] for s in stats() if host in s.hosts)
        close_all()
        unpooled = _measure(
            server,
            "requests.get() (no pooling)",
            calls,
            lambda url: requests.get(url, headers=headers),
        )
    print(f"{'client':<30}{'requests':>10}{'connections':>13}{'req/conn':>10}{'wall':>10}")
    for row in (pooled, unpooled):
        per_connection = row.requests / max(row.connections, 1)
        print(
            f"{row.client:<30}{row.requests:>10}{row.connections:>13}"
            f"{per_connection:>10.1f}{row.seconds:>9.2f}s"
        )
    print(
        f"microrequests.stats() for {host}: connections_opened="
        f"{client_side.connections_opened} requests={client_side.requests} "
        f"reuse_ratio={client_side.reuse_ratio:.1f} idle={client_side.idle} "
        f"discards={client_side.discards}"
    )
    saved = unpooled.connections - pooled.connections
    print(f"connections saved by pooling: {saved} of {unpooled.connections}")
    return 0
