"""``python -m microrequests bench [URL]``: per-request cost, client against client.

Every client sends the same GETs to the same server, interleaved: each round
gives every client one batch, in an order that rotates, so drift on a noisy
machine (another process, CPU frequency) spreads over all of them. Latency
is per request; medians and ratios to ``urllib3.PoolManager`` are what to
quote, not absolute figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
import urllib3

from ._loopback import LoopbackServer
from ._manager import close_all, init
from ._stats import stats

MICROREQUESTS = "microrequests.init()"


@dataclasses.dataclass
class _Client:
    name: str
    get: Callable[[str], Any]
    close: Callable[[], None] = lambda: None
    latencies: list[float] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0
    connections: int | None = None


@dataclasses.dataclass(frozen=True)
class Row:
    client: str
    p50_ms: float
    p99_ms: float
    per_second: float
    connections: int | None
    vs_urllib3: float


def _clients(verify: str | bool) -> list[_Client]:
    pool = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
        ca_certs=verify if isinstance(verify, str) else None,
    )
    session = requests.Session()
    session.verify = verify
    pooled = init()
    pooled.verify = verify
    clients = [
        _Client("urllib3.PoolManager", lambda url: pool.request("GET", url), pool.clear),
        _Client("requests.get (unpooled)", lambda url: requests.get(url, verify=verify)),
        _Client("requests.Session", session.get, session.close),
        _Client(MICROREQUESTS, lambda url: init().get(url)),
    ]
    try:
        import httpx
    except ImportError:
        return clients
    client = httpx.Client(verify=verify)
    clients.append(_Client("httpx.Client", client.get, client.close))
    return clients


def _batch(client: _Client, url: str, count: int, threads: int) -> None:
    def send(n: int) -> list[float]:
        latencies: list[float] = []
        for _ in range(n):
            started = time.perf_counter()
            response = client.get(url)
            latencies.append(time.perf_counter() - started)
            # requests and httpx say status_code, urllib3 says status.
            status: int = getattr(response, "status_code", 0) or getattr(response, "status", 0)
            if status >= 400:
                raise RuntimeError(f"{client.name}: {url} answered {status}")
        return latencies

    started = time.perf_counter()
    if threads == 1:
        client.latencies += send(count)
    else:
        results: list[list[float]] = [[] for _ in range(threads)]

        def run(i: int) -> None:
            results[i] = send(count // threads)

        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        for r in results:
            client.latencies += r
    client.seconds += time.perf_counter() - started
    client.requests += count if threads == 1 else (count // threads) * threads


@contextlib.contextmanager
def _environment_variables(count: int) -> Iterator[None]:
    """Kubernetes-style service variables (7 per service), as in a busy namespace."""
    added: dict[str, str] = {}
    for service in range(count // 7 + 1):
        prefix = f"BENCH_SVC_{service}"
        for suffix in ("SERVICE_HOST", "SERVICE_PORT", "PORT", "PORT_80_TCP", "PORT_80_TCP_PROTO",
                       "PORT_80_TCP_PORT", "PORT_80_TCP_ADDR"):  # fmt: skip
            if len(added) < count:
                added[f"{prefix}_{suffix}"] = "10.96.0.1"
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def _service(url: str | None, tls: bool) -> Iterator[tuple[str, str | bool, LoopbackServer | None]]:
    if url is not None:
        yield url, True, None
        return
    if not tls:
        with LoopbackServer() as server:
            yield server.url + "/bench", True, server
        return
    try:
        import ssl

        import trustme
    except ImportError:
        raise SystemExit("--tls needs trustme: pip install 'microrequests[bench]'") from None
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(tls=context) as server:
        bundle = os.path.join(tmp, "ca.pem")
        ca.cert_pem.write_to_path(bundle)
        yield server.url + "/bench", bundle, server


def run(
    url: str | None = None,
    *,
    requests_per_client: int = 2000,
    rounds: int = 20,
    threads: int = 1,
    tls: bool = False,
    env_vars: int = 0,
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> tuple[list[Row], int]:
    """Measure every client: one row each, urllib3 first, and the number of
    environment variables the run saw."""
    per_batch = max(1, requests_per_client // rounds)
    with _environment_variables(env_vars), _service(url, tls) as (target, verify, server):
        environment_variables = len(os.environ)
        # CA bundle variables would override the session's verify (requests #3829).
        saved = {k: os.environ.pop(k) for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
                 if k in os.environ and isinstance(verify, str)}  # fmt: skip
        clients = _clients(verify)

        def measured(client: _Client, count: int, threads: int) -> None:
            # Batches run one at a time, so the server's new connections in
            # a batch are that client's (warm-up included).
            before = server.stats().opened if server else 0
            _batch(client, target, count, threads)
            if server is not None:
                client.connections = (client.connections or 0) + server.stats().opened - before

        try:
            for client in clients:  # warm-up: imports, first connections
                measured(client, min(20, per_batch), 1)
                client.latencies.clear()
                client.seconds, client.requests = 0.0, 0
            started = time.monotonic()
            for round_ in range(rounds):
                progress(f"  round {round_ + 1}/{rounds}, {time.monotonic() - started:.1f}s")
                shift = round_ % len(clients)
                for client in clients[shift:] + clients[:shift]:
                    measured(client, per_batch, threads)
            # microrequests counts its own, whichever server it talks to.
            ours = next(c for c in clients if c.name == MICROREQUESTS)
            pooled = init()
            ours.connections = sum(
                s.total.connections_opened for s in stats() if s.session_id == id(pooled)
            )
        finally:
            for client in clients:
                client.close()
            close_all()
            os.environ.update(saved)
    base = statistics.median(clients[0].latencies)
    rows = [
        Row(
            c.name,
            statistics.median(c.latencies) * 1e3,
            statistics.quantiles(c.latencies, n=100)[98] * 1e3,
            c.requests / c.seconds if c.seconds else 0.0,
            c.connections,
            statistics.median(c.latencies) / base,
        )
        for c in clients
    ]
    return rows, environment_variables


def table(rows: list[Row]) -> str:
    lines = [
        f"{'client':<26}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'connections':>13}{'vs urllib3':>12}"
    ]
    for r in rows:
        connections = "-" if r.connections is None else str(r.connections)
        lines.append(
            f"{r.client:<26}{r.p50_ms:>9.3f}{r.p99_ms:>9.3f}{r.per_second:>9.0f}"
            f"{connections:>13}{r.vs_urllib3:>11.2f}x"
        )
    return "\n".join(lines)


def plot(rows: list[Row], path: str, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'microrequests[bench]'") from None
    figure, axis = plt.subplots(figsize=(8, 4))
    names = [r.client for r in rows]
    positions = range(len(rows))
    axis.barh([p + 0.2 for p in positions], [r.p50_ms for r in rows], 0.4, label="p50")
    axis.barh([p - 0.2 for p in positions], [r.p99_ms for r in rows], 0.4, label="p99")
    axis.set_yticks(list(positions), names)
    axis.invert_yaxis()
    axis.set_xlabel("milliseconds per GET (lower is better)")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
