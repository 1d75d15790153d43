"""Stale keep-alive connections, idle expiry, pool waits and default timeouts.

Socket-level: the server scripts each connection (tests/socketlevel.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from urllib3.exceptions import MaxRetryError, ReadTimeoutError

import microrequests

from .socketlevel import (
    ANSWER,
    HANGUP_FIRST,
    HANGUP_SECOND,
    PARTIAL_SECOND,
    RESET_SECOND,
    SLOW,
    SLOW_SECONDS,
    STALL,
    scripted,
)

RACES = [HANGUP_SECOND, RESET_SECOND]

# (method, extra keyword arguments): requests that are safe to send twice.
REPLAYABLE: list[tuple[str, dict[str, Any]]] = [
    ("GET", {}),
    ("HEAD", {}),
    ("OPTIONS", {}),
    ("PUT", {"data": b"payload"}),
    ("DELETE", {}),
    ("POST", {"data": b"payload", "headers": {"Idempotency-Key": "k-1"}}),
]


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="microrequests")
    return caplog


def _replays(caplog: pytest.LogCaptureFixture) -> int:
    return sum("sending again on a fresh connection" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("race", RACES)
@pytest.mark.parametrize(("method", "kwargs"), REPLAYABLE, ids=[m for m, _ in REPLAYABLE])
def test_replayable_request_survives_the_keepalive_race_with_no_retries(
    race: str, method: str, kwargs: dict[str, Any], debug_log: pytest.LogCaptureFixture
) -> None:
    session = microrequests.init(max_retries=0)
    with scripted(race, ANSWER) as server:
        session.request(method, server.url + "/first", timeout=10, **kwargs).raise_for_status()
        # Reused connection 0 reads this request, then closes or resets unanswered.
        response = session.request(method, server.url + "/second", timeout=10, **kwargs)
        assert response.status_code == 200
        seen = server.requests()
    assert [(s.connection, s.method, s.path) for s in seen] == [
        (0, method, "/first"),
        (0, method, "/second"),
        (1, method, "/second"),  # once more, on a fresh connection
    ]
    assert _replays(debug_log) == 1


@pytest.mark.parametrize("race", RACES)
def test_post_is_never_replayed(race: str, debug_log: pytest.LogCaptureFixture) -> None:
    session = microrequests.init(max_retries=0)
    with scripted(race, ANSWER) as server:
        session.post(server.url + "/first", data=b"one", timeout=10).raise_for_status()
        with pytest.raises(requests.exceptions.ConnectionError):
            session.post(server.url + "/second", data=b"two", timeout=10)
        posts = [s.path for s in server.requests("POST")]
        assert server.accepted == 1
    assert posts == ["/first", "/second"]  # the server saw the second POST exactly once
    assert _replays(debug_log) == 0


def test_post_is_not_replayed_even_with_retries_configured() -> None:
    # urllib3's own Retry does not retry a POST read error either.
    session = microrequests.init(max_retries=3)
    with scripted(HANGUP_SECOND, ANSWER) as server:
        session.post(server.url, data=b"one", timeout=10).raise_for_status()
        with pytest.raises(requests.exceptions.ConnectionError):
            session.post(server.url, data=b"two", timeout=10)
        assert len(server.requests("POST")) == 2


def test_a_body_that_cannot_be_read_twice_is_not_replayed() -> None:
    session = microrequests.init(max_retries=0)

    def body() -> Iterator[bytes]:
        yield b"streamed"

    with scripted(HANGUP_SECOND, ANSWER) as server:
        session.put(server.url, data=b"one", timeout=10).raise_for_status()
        with pytest.raises(requests.exceptions.ConnectionError):
            session.put(server.url, data=body(), timeout=10)  # sent chunked
        assert len(server.requests("PUT")) == 2
        assert server.accepted == 1


def test_a_new_connection_that_fails_is_not_replayed() -> None:
    # Only a *reused* connection can be stale; a fresh one that is closed
    # unanswered is the service's doing, and max_retries=0 means no retry.
    session = microrequests.init(max_retries=0)
    with scripted(HANGUP_FIRST, ANSWER) as server:
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(server.url, timeout=10)
        assert len(server.requests()) == 1


def test_no_replay_once_response_bytes_arrived() -> None:
    session = microrequests.init(max_retries=0)
    with scripted(PARTIAL_SECOND, ANSWER) as server:
        session.get(server.url, timeout=10).raise_for_status()
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(server.url, timeout=10)
        assert len(server.requests()) == 2
        assert server.accepted == 1


def test_the_replay_does_not_use_up_max_retries(debug_log: pytest.LogCaptureFixture) -> None:
    # max_retries=1 with a 502-retrying policy: the stale replay happens below
    # urllib3's retry accounting, so a 502 afterwards is still retried.
    session = microrequests.init(max_retries=1)
    with scripted(HANGUP_SECOND, ANSWER) as server:
        session.get(server.url, timeout=10).raise_for_status()
        session.get(server.url, timeout=10).raise_for_status()
        assert server.accepted == 2
    assert _replays(debug_log) == 1


def test_keepalive_expiry_closes_idle_connections() -> None:
    session = microrequests.init(keepalive_expiry=1.0)
    with scripted(ANSWER) as server:
        session.get(server.url + "/a", timeout=10).raise_for_status()
        session.get(server.url + "/b", timeout=10).raise_for_status()  # well within 1 s
        assert server.accepted == 1
        time.sleep(1.3)
        session.get(server.url + "/c", timeout=10).raise_for_status()
        assert server.accepted == 2
        assert [(s.connection, s.path) for s in server.requests()] == [
            (0, "/a"),
            (0, "/b"),
            (1, "/c"),
        ]


def test_without_keepalive_expiry_an_idle_connection_is_reused() -> None:
    session = microrequests.init()
    with scripted(ANSWER) as server:
        session.get(server.url, timeout=10).raise_for_status()
        time.sleep(1.3)
        session.get(server.url, timeout=10).raise_for_status()
        assert server.accepted == 1


def test_blocked_pool_fails_within_pool_timeout() -> None:
    session = microrequests.init(pool_block=True, pool_size=1, pool_timeout=0.3)
    with scripted(ANSWER) as server:
        held = session.get(server.url, stream=True, timeout=10)  # holds the only connection
        started = time.monotonic()
        with pytest.raises(microrequests.PoolTimeout) as raised:
            session.get(server.url, timeout=10)
        waited = time.monotonic() - started
        held.close()
    assert isinstance(raised.value, requests.exceptions.Timeout)
    message = str(raised.value)
    assert "127.0.0.1" in message
    assert "pool_timeout=0.3s" in message
    assert "pool_maxsize=1" in message
    # It waited for the timeout, and it did not hang (a bound, not a speed goal).
    assert 0.3 <= waited < 5.0
    assert len(server.requests()) == 1


def test_waiting_thread_gets_the_connection_as_soon_as_it_is_returned() -> None:
    session = microrequests.init(pool_block=True, pool_size=1, pool_timeout=20)
    with scripted(ANSWER) as server:
        held = session.get(server.url, stream=True, timeout=10)
        result: dict[str, Any] = {}

        def waiter() -> None:
            started = time.monotonic()
            result["status"] = session.get(server.url, timeout=10).status_code
            result["waited"] = time.monotonic() - started

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.2)
        assert thread.is_alive()  # blocked on the pool
        assert held.content == b"ok"  # read to the end: hands the connection back
        thread.join(10)
        assert not thread.is_alive()
        assert server.accepted == 1
    assert result["status"] == 200
    assert result["waited"] < 10  # woken by the return, long before pool_timeout=20


def _read_timed_out(exc: BaseException) -> bool:
    """A read timeout, as requests reports it: with a urllib3 Retry policy
    (ours, as any max_retries > 0 in requests) it is a ConnectionError around
    MaxRetryError(reason=ReadTimeoutError), not a ReadTimeout."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, ReadTimeoutError)


def test_default_timeout_applies_and_per_call_timeout_wins() -> None:
    session = microrequests.init(timeout=0.3)
    with scripted(SLOW) as server:
        with pytest.raises(requests.exceptions.RequestException) as raised:
            session.get(server.url)
        assert _read_timed_out(raised.value), raised.value
        assert session.get(server.url, timeout=SLOW_SECONDS + 5).status_code == 200


def test_default_timeout_as_connect_read_tuple() -> None:
    session = microrequests.init(timeout=(5, 0.3), max_retries=0)
    with scripted(STALL) as server:
        with pytest.raises(requests.exceptions.RequestException) as raised:
            session.get(server.url)
        assert _read_timed_out(raised.value), raised.value
        assert len(server.requests()) == 1


def test_without_default_timeout_requests_waits() -> None:
    # The default stays None, as in requests: the SLOW answer arrives.
    session = microrequests.init()
    with scripted(SLOW) as server:
        assert session.get(server.url).status_code == 200


def test_new_arguments_are_part_of_the_singleton_key() -> None:
    base = microrequests.init()
    assert microrequests.init(timeout=1) is microrequests.init(timeout=1.0)
    assert microrequests.init(timeout=1) is not base
    assert microrequests.init(timeout=(1, 2)) is not microrequests.init(timeout=1)
    assert microrequests.init(keepalive_expiry=30) is not base
    assert microrequests.init(pool_timeout=5) is not base
    assert microrequests.init(keepalive_expiry=30.0) is microrequests.init(keepalive_expiry=30)
