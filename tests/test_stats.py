"""stats() agrees with what the server counted."""

from __future__ import annotations

import os
import time

import microrequests
from microrequests._loopback import LoopbackServer

from .helpers import get, run_threads, start_child


def _host(server: LoopbackServer, session: microrequests.Session) -> microrequests.HostStats:
    (entry,) = [s for s in microrequests.stats() if s.session_id == id(session)]
    return entry.hosts[f"http://{server.host}:{server.port}"]


def test_counts_match_the_server(server: LoopbackServer) -> None:
    session = microrequests.init()
    for _ in range(25):
        get(session, server.url)
    figures = _host(server, session)
    assert figures == microrequests.HostStats(connections_opened=1, requests=25, idle=1, discards=0)
    assert figures.reuse_ratio == 25.0
    assert server.stats().opened == figures.connections_opened


def test_pool_full_discards_are_counted(server: LoopbackServer) -> None:
    session = microrequests.init(pool_size=1)
    held = [session.get(server.url, stream=True, timeout=10) for _ in range(3)]  # 3 at once
    for response in held:
        assert response.content == b"ok"  # each hands its connection back
    figures = _host(server, session)
    assert server.stats().opened == 3
    assert figures.connections_opened == 3
    assert figures.discards == 2  # room for one
    assert figures.idle == 1


def test_reconnects_after_idle_expiry_count_as_opened(server: LoopbackServer) -> None:
    session = microrequests.init(keepalive_expiry=0.5)
    get(session, server.url)
    time.sleep(0.8)
    get(session, server.url)
    assert _host(server, session).connections_opened == server.stats().opened == 2


def test_thread_scope_sessions_are_separate_entries(server: LoopbackServer) -> None:
    def in_thread(i: int) -> int:
        session = microrequests.init(scope="thread")
        for _ in range(i + 1):
            get(session, server.url)
        # While the thread lives, its session is its own entry with its own counts.
        assert _host(server, session).requests == i + 1
        return id(session)

    assert len(set(run_threads(3, in_thread))) == 3


def test_a_forked_child_starts_from_zero(server: LoopbackServer) -> None:
    session = microrequests.init()
    for _ in range(5):
        get(session, server.url)

    def child() -> None:
        (entry,) = [s for s in microrequests.stats() if s.session_id == id(session)]
        assert entry.hosts == {}, entry
        get(session, server.url)
        assert _host(server, session).requests == 1

    start_child(child).join()
    assert _host(server, session).requests == 5
    assert os.getpid() in server.stats().connections[0].pids


def test_close_all_empties_the_snapshot(server: LoopbackServer) -> None:
    session = microrequests.init()
    get(session, server.url)
    microrequests.close_all()
    (entry,) = [s for s in microrequests.stats() if s.session_id == id(session)]
    assert entry.hosts == {}
    assert entry.total == microrequests.HostStats(0, 0, 0, 0)
