"""Stress scenarios: each returns one ``Result`` of figures, counted at the server.

Every scenario talks only to a ``LoopbackServer`` on 127.0.0.1, is bounded in
requests and time, and stops by itself.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import gc
import itertools
import logging
import multiprocessing
import os
import socketserver
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import requests

import microrequests
from microrequests._loopback import LoopbackServer
from microrequests._session import live_sessions
from tests.helpers import Child, pid_header, socket_fds, start_child, wait_for

from ._proxy import FaultProxy


@dataclasses.dataclass
class Scale:
    """How hard to push; ``quick`` is what CI runs."""

    storm_requests: int
    churn_threads: int
    fork_children: int
    busy_forks: int
    traffic_seconds: float
    mp_tasks: int
    seed: int = 20261204

    @classmethod
    def pick(cls, quick: bool, duration: float | None) -> Scale:
        scale = (
            cls(2_000, 1_000, 4, 10, 2.0, 30) if quick else cls(10_000, 10_000, 10, 25, 8.0, 120)
        )
        if duration is not None:  # soak: stretch the time-bound scenarios
            scale.traffic_seconds = duration
        return scale


@dataclasses.dataclass
class Result:
    name: str
    requests: int = 0
    errors: int = 0
    opened: int = 0
    shared: int = 0
    fds_before: int = 0
    fds_after: int = 0
    seconds: float = 0.0
    extra: str = ""
    problems: list[str] = dataclasses.field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def line(self) -> str:
        status = "ok  " if not self.problems else "FAIL"
        text = (
            f"{status} {self.name:<22} requests={self.requests:<6} errors={self.errors:<3} "
            f"opened={self.opened:<5} shared={self.shared} "
            f"socket_fds={self.fds_before}->{self.fds_after} wall={self.seconds:.1f}s"
        )
        if self.extra:
            text += f" {self.extra}"
        for problem in self.problems:
            text += f"\n     ! {problem}"
        return text


class _DiscardCounter(logging.Handler):
    """Counts urllib3's "Connection pool is full, discarding connection"."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "pool is full" in record.getMessage():
            self.count += 1


def _send(session: microrequests.Session, url: str) -> None:
    session.get(url, headers=pid_header(), timeout=10).raise_for_status()


class _Errors:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.first: BaseException | None = None

    def record(self, exc: BaseException) -> None:
        with self._lock:
            self.count += 1
            self.first = self.first or exc


def _threads(count: int, target: Callable[[int], None], errors: _Errors) -> None:
    def run(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.record(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        if t.is_alive():
            errors.record(TimeoutError(f"{t.name} still running after 120 s"))


@contextlib.contextmanager
def _measured(name: str) -> Iterator[tuple[Result, _Errors, LoopbackServer]]:
    """Run a scenario against its own server; on the way out, close everything
    and take the server's and the descriptors' figures."""
    result, errors = Result(name), _Errors()
    with LoopbackServer() as server:
        result.fds_before = socket_fds()
        started = time.monotonic()
        yield result, errors, server
        microrequests.close_all()
        gc.collect()
        server.wait_until(lambda s: s.open_now == 0)
        wait_for(lambda: socket_fds() <= result.fds_before, timeout=5)
        stats = server.stats()
        # Measured with the listener still open, as fds_before was.
        result.fds_after = socket_fds()
        result.seconds = time.monotonic() - started
    result.requests = stats.requests
    result.opened = stats.opened
    result.shared = stats.shared_across_pids
    result.errors += errors.count
    result.check(result.errors == 0, f"{result.errors} error(s); first: {errors.first!r}")
    result.check(result.shared == 0, f"{result.shared} connection(s) carried two pids")
    result.check(
        result.fds_after <= result.fds_before,
        f"{result.fds_after - result.fds_before} socket descriptor(s) leaked",
    )


def _join_children(children: list[Child], deadline: float, result: Result) -> None:
    for child in children:
        try:
            child.join(timeout=deadline)
        except AssertionError as exc:
            result.errors += 1
            result.problems.append(str(exc).splitlines()[0])


def thread_storm(scale: Scale) -> Result:
    """64 threads call init() and send on one process-scope session."""
    discards = _DiscardCounter()
    logging.getLogger("urllib3").addHandler(discards)
    sessions: set[int] = set()
    per_thread = scale.storm_requests // 64
    try:
        with _measured("1 thread storm") as (result, errors, server):

            def work(_: int) -> None:
                for _ in range(per_thread):
                    session = microrequests.init(pool_maxsize=64)
                    sessions.add(id(session))
                    _send(session, server.url)

            _threads(64, work, errors)
    finally:
        logging.getLogger("urllib3").removeHandler(discards)
    result.extra = f"sessions={len(sessions)} discards={discards.count}"
    result.check(result.requests == 64 * per_thread, "requests lost")
    result.check(discards.count == 0, f"{discards.count} 'pool is full' discards")
    result.check(result.opened <= 64, f"{result.opened} connections for 64 threads")
    result.check(len(sessions) == 1, f"{len(sessions)} sessions instead of 1")
    return result


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0  # pragma: no cover - not Linux


def _client_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> int:
    """Bytes allocated and still held, leaving out the in-process server.

    The loopback server keeps a record of every connection it accepted (that
    is how it counts them): about 380 bytes each, allocated by its socketserver
    threads. Those are the measuring instrument, not the client.
    """
    server_side = [tracemalloc.Filter(False, socketserver.__file__, all_frames=True)]
    after = after.filter_traces(server_side)
    before = before.filter_traces(server_side)
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))


def thread_churn(scale: Scale) -> Result:
    """Short-lived threads with scope="thread": descriptors and memory stay flat."""
    batch = 50
    with _measured("2 thread churn") as (result, errors, server):

        def once(_: int) -> None:
            _send(microrequests.init(scope="thread"), server.url)

        _threads(batch, once, errors)  # warm-up: imports, caches, server threads
        gc.collect()
        tracemalloc.start(10)  # deep enough to see a socketserver frame
        first, rss_start = tracemalloc.take_snapshot(), _rss_kib()
        fds_after_batch = 0
        for _ in range(scale.churn_threads // batch - 1):
            _threads(batch, once, errors)
            fds_after_batch = max(fds_after_batch, socket_fds() - result.fds_before)
        gc.collect()
        traced_growth = _client_growth(first, tracemalloc.take_snapshot())
        tracemalloc.stop()
        rss_growth = _rss_kib() - rss_start
        sessions_left = len(live_sessions())
    result.extra = (
        f"threads={scale.churn_threads} max_fds_after_batch={fds_after_batch} "
        f"traced_growth={traced_growth / 1024:.0f}KiB rss_growth={rss_growth}KiB "
        f"sessions_left={sessions_left}"
    )
    # Each live thread of a batch may hold one client and one server socket.
    result.check(fds_after_batch <= 2 * batch + 8, f"socket descriptors grew by {fds_after_batch}")
    result.check(traced_growth < 4 * 1024 * 1024, f"traced memory grew {traced_growth} bytes")
    result.check(sessions_left <= 2, f"{sessions_left} sessions outlived their threads")
    return result


def _child_traffic(url: str, seconds: float) -> None:
    """In a child: 3 threads send through the inherited session, then exit."""
    failures = _Errors()
    stop = time.monotonic() + seconds

    def send(_: int) -> None:
        while time.monotonic() < stop:
            _send(microrequests.init(), url)

    _threads(3, send, failures)
    if failures.count:
        raise RuntimeError(f"{failures.count} error(s) in child: {failures.first!r}")


def fork_during_traffic(scale: Scale) -> Result:
    """6 threads send while the process forks; children send from 3 threads each."""
    with _measured("3 fork during traffic") as (result, errors, server):
        stop = threading.Event()

        def send(_: int) -> None:
            while not stop.is_set():
                _send(microrequests.init(), server.url)

        senders = threading.Thread(target=_threads, args=(6, send, errors), daemon=True)
        senders.start()
        children = []
        child_seconds = max(0.3, scale.traffic_seconds / scale.fork_children)
        for _ in range(scale.fork_children):
            time.sleep(0.05)
            children.append(start_child(lambda: _child_traffic(server.url, child_seconds)))
        _join_children(children, child_seconds + 20, result)
        stop.set()
        senders.join(60)
    result.extra = f"children={len(children)}"
    return result


def _init_and_send(pool_size: int, url: str) -> None:
    _send(microrequests.init(pool_size=pool_size), url)


def fork_while_busy(scale: Scale) -> Result:
    """Threads churn init()/close_all() while the process forks; no child hangs."""
    with _measured("4 fork while busy") as (result, errors, server):
        stop = threading.Event()
        sizes = itertools.cycle(range(1, 9))

        def churn(i: int) -> None:
            while not stop.is_set():
                if i == 0:
                    microrequests.close_all()
                else:
                    size = next(sizes)
                    microrequests.init(pool_size=size, scope="thread" if size % 2 else "process")

        churners = threading.Thread(target=_threads, args=(4, churn, errors), daemon=True)
        churners.start()
        children = []
        for n in range(scale.busy_forks):
            time.sleep(0.02)
            children.append(start_child(functools.partial(_init_and_send, n % 8 + 1, server.url)))
        _join_children(children, 10.0, result)
        stop.set()
        churners.join(60)
    result.extra = f"forks={len(children)}"
    result.check(result.requests == len(children), "a child's request is missing")
    return result


def close_all_during_traffic(scale: Scale) -> Result:
    """close_all() every few milliseconds while 8 threads send."""
    closes = 0
    with _measured("5 close_all in traffic") as (result, errors, server):
        stop = threading.Event()
        sent = [0] * 8

        def send(i: int) -> None:
            while not stop.is_set():
                _send(microrequests.init(scope="thread" if i % 2 else "process"), server.url)
                sent[i] += 1

        senders = threading.Thread(target=_threads, args=(8, send, errors), daemon=True)
        senders.start()
        deadline = time.monotonic() + scale.traffic_seconds
        while time.monotonic() < deadline:
            microrequests.close_all()
            closes += 1
            time.sleep(0.003)
        stop.set()
        senders.join(60)
    result.extra = f"close_all_calls={closes}"
    result.check(result.requests == sum(sent), f"server saw {result.requests}, sent {sum(sent)}")
    return result


def faults_through_proxy(scale: Scale) -> Result:
    """Resets, drops, stalls and drips from a seeded proxy: nothing hangs or doubles."""
    outcomes: collections.Counter[str] = collections.Counter()
    slowest = 0.0
    lock = threading.Lock()
    # A call may take every attempt's connect and read timeout, plus a drip.
    bound = (1 + 3) * (1.0 + 1.0) + 5.0
    with _measured("6 faults via proxy") as (result, errors, server):
        with FaultProxy((server.host, server.port), seed=scale.seed) as proxy:
            stop = time.monotonic() + scale.traffic_seconds

            def client(i: int) -> None:
                nonlocal slowest
                session = microrequests.init(max_retries=3, timeout=(1.0, 1.0))
                n = 0
                while time.monotonic() < stop:
                    n += 1
                    method = "POST" if n % 2 else "GET"
                    started = time.monotonic()
                    try:
                        session.request(
                            method, f"{proxy.url}/{method.lower()}/{i}-{n}", data=b"x"
                        ).raise_for_status()
                        outcome = f"{method} ok"
                    except requests.exceptions.Timeout:
                        outcome = f"{method} timeout"
                    except requests.exceptions.RequestException as exc:
                        outcome = f"{method} {type(exc).__name__}"
                    took = time.monotonic() - started
                    with lock:
                        outcomes[outcome] += 1
                        slowest = max(slowest, took)
                    if took > bound:
                        errors.record(TimeoutError(f"{method} took {took:.1f}s > {bound}s"))

            _threads(8, client, errors)
            faults = proxy.faults
        posts = {path: n for path, n in server.stats().paths.items() if path.startswith("POST")}
    duplicated = sum(1 for n in posts.values() if n > 1)
    injected = sum(n for fault, n in faults.items() if fault != "pass")
    result.extra = (
        f"seed={scale.seed} faults={injected}/{sum(faults.values())} "
        f"outcomes={dict(sorted(outcomes.items()))} posts_at_server={len(posts)} "
        f"posts_duplicated={duplicated} slowest_call={slowest:.1f}s"
    )
    result.check(duplicated == 0, f"{duplicated} POST(s) reached the server twice")
    result.check(outcomes["POST ok"] <= len(posts), "a POST succeeded that the server never saw")
    result.check(injected > 0, "the proxy injected no fault")
    return result


def _mp_call(url: str) -> tuple[int, int]:
    response = microrequests.init().get(url, headers=pid_header(), timeout=10)
    return os.getpid(), response.status_code


def multiprocessing_pools(scale: Scale) -> Result:
    """multiprocessing Pools with the fork and the spawn start methods."""
    figures = []
    with _measured("7 multiprocessing") as (result, errors, server):
        _send(microrequests.init(), server.url)  # pooled in the parent before forking
        for method in ("fork", "spawn"):
            before = server.stats()
            with multiprocessing.get_context(method).Pool(3) as pool:
                answers = pool.map(_mp_call, [server.url] * scale.mp_tasks, chunksize=1)
            after = server.stats()
            errors.count += sum(1 for _, status in answers if status != 200)
            workers = {pid for pid, _ in answers}
            figures.append(f"{method}:workers={len(workers)},opened={after.opened - before.opened}")
            result.check(os.getpid() not in workers, f"{method}: a task ran in the parent")
    result.extra = " ".join(figures)
    result.check(result.requests == 1 + 2 * scale.mp_tasks, "requests lost")
    return result


SCENARIOS: dict[str, Callable[[Scale], Result]] = {
    "storm": thread_storm,
    "churn": thread_churn,
    "fork-traffic": fork_during_traffic,
    "fork-busy": fork_while_busy,
    "close-all": close_all_during_traffic,
    "faults": faults_through_proxy,
    "multiprocessing": multiprocessing_pools,
}
