"""Reuse, identity and thread behaviour, proven by what the server saw."""

from __future__ import annotations

import gc
import logging
import threading
import time

import pytest
import requests
from urllib3.util.retry import Retry

import microrequests
from microrequests import _manager as manager_module
from microrequests._config import PoolConfig
from microrequests._loopback import LoopbackServer
from microrequests._session import Session, live_sessions

from .helpers import get, run_threads, socket_fds, wait_for


def test_repeated_init_reuses_one_connection(server: LoopbackServer) -> None:
    for _ in range(1000):
        get(microrequests.init(), server.url)
    stats = server.stats()
    assert stats.requests == 1000
    assert stats.opened == 1


def test_unpooled_requests_would_open_one_connection_per_call(server: LoopbackServer) -> None:
    # The control for the test above: the server does count new connections.
    for _ in range(20):
        get(requests.Session(), server.url)
        gc.collect()
    assert server.stats().opened == 20


def test_init_returns_a_requests_session() -> None:
    session = microrequests.init()
    assert isinstance(session, microrequests.Session)
    assert isinstance(session, requests.Session)


@pytest.mark.parametrize(
    "same",
    [
        microrequests.init,
        lambda: microrequests.init(1, 100, 50),
        lambda: microrequests.init(pool_size=50),
        lambda: microrequests.init(pool_maxsize=50, pool_size=50),
        lambda: microrequests.init(max_retries=Retry(total=1, status_forcelist=[500, 502])),
        lambda: microrequests.init(scope="process"),
    ],
)
def test_same_configuration_same_session(same: object) -> None:
    assert callable(same)
    assert same() is microrequests.init()


@pytest.mark.parametrize(
    "other",
    [
        lambda: microrequests.init(max_retries=2),
        lambda: microrequests.init(pool_connections=10),
        lambda: microrequests.init(pool_size=5),
        lambda: microrequests.init(pool_block=True),
        lambda: microrequests.init(scope="thread"),
        lambda: microrequests.init(max_retries=Retry(total=1)),
    ],
)
def test_different_configuration_different_session(other: object) -> None:
    assert callable(other)
    assert other() is not microrequests.init()


def test_different_configurations_have_their_own_pools(server: LoopbackServer) -> None:
    get(microrequests.init(), server.url)
    get(microrequests.init(pool_size=5), server.url)
    get(microrequests.init(), server.url)
    get(microrequests.init(pool_size=5), server.url)
    assert server.stats().opened == 2


def test_seed_configuration_is_applied() -> None:
    session = microrequests.init(max_retries=2, pool_connections=10, pool_size=5)
    for prefix in ("http://", "https://"):
        adapter = session.adapters[prefix]
        assert isinstance(adapter, requests.adapters.HTTPAdapter)
        assert adapter._pool_connections == 10
        assert adapter._pool_maxsize == 5
        assert adapter.poolmanager.connection_pool_kw["maxsize"] == 5
        assert adapter.max_retries.total == 2
        assert set(adapter.max_retries.status_forcelist or ()) == {500, 502}


def test_thread_scope_is_per_thread_and_process_scope_is_shared() -> None:
    mine = microrequests.init(scope="thread")
    assert microrequests.init(scope="thread") is mine
    shared = microrequests.init()
    theirs = run_threads(
        4, lambda _: (microrequests.init(scope="thread"), microrequests.init(scope="thread"))
    )
    for first, second in theirs:
        assert first is second
        assert first is not mine
    assert len({id(first) for first, _ in theirs}) == 4
    assert all(s is shared for s in run_threads(4, lambda _: microrequests.init()))


def test_first_call_race_creates_exactly_one_session(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Session] = []
    real = manager_module._session_from_config

    def slow_build(config: PoolConfig) -> Session:
        time.sleep(0.01)  # widen the window a missing lock would let through
        session = real(config)
        built.append(session)
        return session

    monkeypatch.setattr(manager_module, "_session_from_config", slow_build)
    barrier = threading.Barrier(64)

    def first_call(_: int) -> Session:
        barrier.wait()
        return microrequests.init(pool_connections=7)

    sessions = run_threads(64, first_call)
    assert len(built) == 1
    assert all(s is built[0] for s in sessions)


def test_32_threads_share_one_session_without_discards(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3")
    barrier = threading.Barrier(32)

    def worker(_: int) -> microrequests.Session:
        barrier.wait()
        session = microrequests.init(pool_maxsize=50)
        for _ in range(40):
            get(session, server.url)
        return session

    sessions = run_threads(32, worker)
    stats = server.stats()
    assert len({id(s) for s in sessions}) == 1
    assert stats.requests == 32 * 40
    assert stats.opened <= 32
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_dead_threads_release_their_sessions(server: LoopbackServer) -> None:
    baseline = socket_fds()
    sessions_before = len(live_sessions())

    def short_lived(_: int) -> None:
        get(microrequests.init(scope="thread"), server.url)

    for _ in range(10):  # 300 threads, 30 alive at a time
        run_threads(30, short_lived)
    gc.collect()
    stats = server.wait_until(lambda s: s.open_now <= 2)
    assert stats.opened == 300  # one connection per thread's own session
    assert stats.open_now <= 2, f"{stats.open_now} connections still open"
    assert wait_for(lambda: socket_fds() - baseline <= 4), socket_fds() - baseline
    assert len(live_sessions()) - sessions_before <= 2


def test_close_all_reaches_every_session(server: LoopbackServer) -> None:
    baseline = socket_fds()
    process_scoped = microrequests.init()
    get(process_scoped, server.url)
    direct = microrequests.Session()
    get(direct, server.url)
    started, finish = threading.Event(), threading.Event()
    thread_scoped: list[microrequests.Session] = []

    def live_thread() -> None:
        session = microrequests.init(scope="thread")
        get(session, server.url)
        thread_scoped.append(session)
        started.set()
        finish.wait(30)
        # The thread is still alive but its session was closed: init() in it
        # must now hand out a new one, which works.
        thread_scoped.append(microrequests.init(scope="thread"))
        get(thread_scoped[-1], server.url)

    thread = threading.Thread(target=live_thread)
    thread.start()
    try:
        assert started.wait(10)
        assert server.stats().open_now == 3
        microrequests.close_all()
        stats = server.wait_until(lambda s: s.open_now == 0)
        assert stats.open_now == 0
        assert wait_for(lambda: socket_fds() == baseline), socket_fds() - baseline
        microrequests.close_all()  # idempotent
        fresh = microrequests.init()
        assert fresh is not process_scoped
        get(fresh, server.url)
        assert server.stats().opened == 4
    finally:
        finish.set()
        thread.join(10)
    assert thread_scoped[1] is not thread_scoped[0]
    assert server.stats().opened == 5


def test_closed_session_stays_usable_like_requests(server: LoopbackServer) -> None:
    # requests.Session.close() leaves a usable session; so does ours.
    session = microrequests.Session()
    get(session, server.url)
    session.close()
    get(session, server.url)
    assert server.stats().opened == 2
    session.close()


def test_close_all_closes_pools_that_are_still_referenced(server: LoopbackServer) -> None:
    # urllib3 2 only forgets pools on clear() and leaves closing to the
    # garbage collector; a pool still referenced (by a response being read,
    # a thread mid-request) would keep its socket. close_all() closes it.
    session = microrequests.init()
    get(session, server.url)
    adapter = session.get_adapter(server.url)
    pool = adapter.poolmanager.connection_from_url(server.url)  # type: ignore[attr-defined]
    microrequests.close_all()
    assert server.wait_until(lambda s: s.open_now == 0).open_now == 0
    assert pool.pool is None  # closed, not merely dropped
