"""Fork safety: no connection ever carries two processes' requests."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import microrequests
from microrequests._loopback import LoopbackServer, ServerStats
from microrequests._manager import _manager
from microrequests._session import _registry

from .helpers import get, pid_header, start_child

# A session kept in a module global across the fork, as application code does.
GLOBAL_SESSION: microrequests.Session | None = None


def _connections_of(stats: ServerStats, pid: int) -> list[int]:
    return [c.index for c in stats.connections if pid in c.pids]


def test_parent_and_four_children_never_share_a_connection(server: LoopbackServer) -> None:
    global GLOBAL_SESSION  # noqa: PLW0603 - deliberately what application code does
    GLOBAL_SESSION = microrequests.init()
    parent = os.getpid()
    get(GLOBAL_SESSION, server.url)
    assert _connections_of(server.stats(), parent) == [0]

    def child() -> None:
        assert GLOBAL_SESSION is not None
        assert microrequests.init() is GLOBAL_SESSION  # same object, own sockets
        for _ in range(25):
            get(GLOBAL_SESSION, server.url)
            get(microrequests.init(), server.url)

    children = [start_child(child) for _ in range(4)]
    for _ in range(50):  # the parent keeps working meanwhile
        get(GLOBAL_SESSION, server.url)
    for c in children:
        c.join()
    stats = server.stats()
    assert stats.shared_across_pids == 0
    assert _connections_of(stats, parent) == [0]  # still on its own connection
    assert stats.connections[0].requests == 51
    for c in children:
        assert len(_connections_of(stats, c.pid)) == 1
    assert stats.requests == 51 + 4 * 50
    GLOBAL_SESSION = None


def test_child_of_child_gets_its_own_connections(server: LoopbackServer) -> None:
    session = microrequests.init()
    get(session, server.url)

    def grandchild() -> None:
        get(session, server.url)

    def child() -> None:
        get(session, server.url)
        start_child(grandchild).join()
        get(session, server.url)

    start_child(child).join()
    get(session, server.url)
    stats = server.stats()
    assert stats.opened == 3
    assert stats.shared_across_pids == 0


def test_fork_that_skips_the_at_fork_handlers_is_caught_by_the_pid_check(
    server: LoopbackServer,
) -> None:
    # fork(2) called straight from C (here through ctypes, keeping the GIL)
    # runs no os.register_at_fork handler: only the pid check in send() sees it.
    libc_fork: Callable[[], int] = ctypes.PyDLL(None).fork
    session = microrequests.init()
    get(session, server.url)

    def child() -> None:
        assert session._pid != os.getpid()  # the handler really did not run
        for _ in range(5):
            get(session, server.url)

    start_child(child, fork=libc_fork).join()
    get(session, server.url)
    stats = server.stats()
    assert stats.opened == 2
    assert stats.shared_across_pids == 0


def _mp_task(url: str) -> tuple[int, int]:
    response = microrequests.init().get(url, headers=pid_header(), timeout=10)
    return os.getpid(), response.status_code


def test_multiprocessing_fork_pool_never_shares(server: LoopbackServer) -> None:
    get(microrequests.init(), server.url)  # pooled in the parent before forking
    with multiprocessing.get_context("fork").Pool(3) as pool:
        results = pool.map(_mp_task, [server.url] * 30, chunksize=1)
    assert {status for _, status in results} == {200}
    workers = {pid for pid, _ in results}
    stats = server.stats()
    assert stats.shared_across_pids == 0
    assert _connections_of(stats, os.getpid()) == [0]
    for pid in workers:
        assert len(_connections_of(stats, pid)) == 1


def _holder(lock: Any) -> Iterator[None]:
    """Hold ``lock`` in another thread for the duration of the context."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def _manager_lock(session: microrequests.Session, url: str) -> Any:
    return _manager._lock


def _registry_lock(session: microrequests.Session, url: str) -> Any:
    return _registry.lock


def _urllib3_pools_lock(session: microrequests.Session, url: str) -> Any:
    return session.get_adapter(url).poolmanager.pools.lock  # type: ignore[attr-defined]


def _urllib3_queue_mutex(session: microrequests.Session, url: str) -> Any:
    pool = session.get_adapter(url).poolmanager.connection_from_url(url)  # type: ignore[attr-defined]
    return pool.pool.mutex


def _cookie_jar_lock(session: microrequests.Session, url: str) -> Any:
    return session.cookies._cookies_lock


@pytest.mark.parametrize(
    "lock_of",
    [_manager_lock, _registry_lock, _urllib3_pools_lock, _urllib3_queue_mutex, _cookie_jar_lock],
)
def test_fork_while_another_thread_holds_a_lock(
    server: LoopbackServer, lock_of: Callable[[microrequests.Session, str], Any]
) -> None:
    session = microrequests.init()
    get(session, server.url)

    def child() -> None:
        get(session, server.url)  # through the session made before the fork
        get(microrequests.init(pool_size=3), server.url)  # a new one: manager lock
        microrequests.close_all()  # registry lock
        get(microrequests.init(), server.url)

    holding = _holder(lock_of(session, server.url))
    next(holding)
    try:
        forked = start_child(child)
    finally:
        next(holding, None)
    forked.join(timeout=15)
    get(session, server.url)
    stats = server.stats()
    assert stats.shared_across_pids == 0
    assert _connections_of(stats, os.getpid()) == [0]


def test_child_does_not_disturb_parent_connection(server: LoopbackServer) -> None:
    # The child drops its copy of the socket without I/O: no FIN, no reset
    # reaches the server, so the parent's connection stays open and in use.
    session = microrequests.init()
    get(session, server.url)
    start_child(lambda: None).join()
    start_child(microrequests.close_all).join()
    assert server.stats().connections[0].open
    get(session, server.url)
    stats = server.stats()
    assert stats.opened == 1
    assert stats.connections[0].requests == 2
