"""microrequests.Session behaves like requests.Session, plus pooling."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import threading
from typing import Any

import pytest
import requests
from urllib3.util.retry import Retry

import microrequests
from microrequests._adapter import PooledAdapter
from microrequests._loopback import LoopbackServer
from microrequests._session import live_sessions

from .helpers import get, run_threads


def test_defaults_are_the_seed_defaults() -> None:
    session = microrequests.Session()
    for prefix in ("http://", "https://"):
        adapter = session.adapters[prefix]
        assert isinstance(adapter, PooledAdapter)
        assert adapter._pool_connections == 100
        assert adapter._pool_maxsize == 50
        assert adapter._pool_block is False
        assert isinstance(adapter.max_retries, Retry)
        assert adapter.max_retries.total == 1
        assert set(adapter.max_retries.status_forcelist or ()) == {500, 502}
    session.close()


def test_seed_readme_examples_work_verbatim(server: LoopbackServer) -> None:
    # The two examples of the 0.1.2 README, with its httpbin URL pointed here.
    first = """
import microrequests

mr = microrequests.init()
# mr is requests' session object and you can use it in similar manner
res = mr.get("http://httpbin.org/get")
print(res.text)
"""
    second = """
import microrequests

mr = microrequests.init(max_retries=2, pool_connections=10, pool_size=5)
res = mr.get("http://httpbin.org/get")
print(res.text)
"""
    for example in (first, second):
        exec(example.replace("http://httpbin.org", server.url), {})
    assert server.stats().requests == 2


def test_status_retries_follow_the_seed(server: LoopbackServer) -> None:
    session = microrequests.init()  # Retry(total=1, status_forcelist=[500, 502])
    with pytest.raises(requests.exceptions.RetryError):
        session.get(server.url + "/status/502", timeout=10)
    assert server.stats().requests == 2
    assert session.get(server.url + "/status/404", timeout=10).status_code == 404
    assert server.stats().requests == 3


def test_pickled_session_is_tracked_and_works(server: LoopbackServer) -> None:
    session = microrequests.Session(pool_size=3)
    session.headers["X-Team"] = "users"
    clone = pickle.loads(pickle.dumps(session))
    assert isinstance(clone, microrequests.Session)
    assert clone in live_sessions()
    assert clone.headers["X-Team"] == "users"
    adapter = clone.adapters["http://"]
    assert isinstance(adapter, PooledAdapter)
    assert adapter._pool_maxsize == 3
    get(clone, server.url)
    session.close()


def test_close_all_during_traffic_loses_no_request(server: LoopbackServer) -> None:
    stop = threading.Event()
    closes = 0

    def closer() -> None:
        nonlocal closes
        while not stop.is_set():
            microrequests.close_all()
            closes += 1
            stop.wait(0.002)

    thread = threading.Thread(target=closer)
    thread.start()
    try:
        run_threads(6, lambda _: [get(microrequests.init(), server.url) for _ in range(150)])
    finally:
        stop.set()
        thread.join(10)
    assert closes > 10
    assert server.stats().requests == 6 * 150


def test_request_caught_in_close_all_window_is_sent_again(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Land close_all() exactly between the adapter fetching its pool and the
    # pool handing out a connection: the window another thread can hit.
    session = microrequests.init()
    get(session, server.url)
    adapter = session.get_adapter(server.url)
    assert isinstance(adapter, PooledAdapter)
    real = adapter.get_connection_with_tls_context
    hits = 0

    def fetch_then_close(*args: Any, **kwargs: Any) -> Any:
        nonlocal hits
        pool = real(*args, **kwargs)
        hits += 1
        if hits == 1:
            microrequests.close_all()
        return pool

    monkeypatch.setattr(adapter, "get_connection_with_tls_context", fetch_then_close)
    assert get(session, server.url).status_code == 200
    assert hits == 2
    assert server.stats().requests == 2


def test_demo_counts_connections_from_the_server_side() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "microrequests", "demo", "--calls", "40"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pooled = re.search(r"microrequests\.init\(\)\.get\(\)\s+(\d+)\s+(\d+)", result.stdout)
    unpooled = re.search(r"requests\.get\(\) \(no pooling\)\s+(\d+)\s+(\d+)", result.stdout)
    assert pooled, result.stdout
    assert unpooled, result.stdout
    assert pooled.groups() == ("40", "1")
    assert re.search(r"stats\(\) for \S+: connections_opened=1 requests=40 ", result.stdout)
    assert unpooled.groups() == ("40", "40")
