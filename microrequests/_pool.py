"""urllib3 pools that absorb stale keep-alive connections and expire idle ones.

The race (requests #4664, urllib3 #944): a server closes an idle keep-alive
connection just as the client reuses it. The client's request goes out, and
the read finds the connection closed (``RemoteDisconnected``) or reset,
before a single byte of a response. Nothing went wrong with the service; the
pool handed out a dead connection. When that happens on a *reused*
connection and the request is safe to send twice, the pool sends it once
more on a fresh connection, inside ``_make_request``: below urllib3's retry
accounting, so it holds with ``max_retries=0`` and does not use up a retry
(as Go's ``net/http`` ``shouldRetryRequest`` does).

``keepalive_expiry`` closes a connection idle longer than that at checkout
instead of reusing it, so the race mostly never happens; ``pool_timeout``
bounds the wait for a connection when ``pool_block=True``.
"""

from __future__ import annotations

import dataclasses
import functools
import http.client
import logging
import queue
import ssl
import time
from collections.abc import Mapping
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

log = logging.getLogger("microrequests")

# Safe to send twice (RFC 9110 idempotent methods), given a body that can be
# sent again. Any method carrying an Idempotency-Key header is too.
REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
IDEMPOTENCY_KEY = "idempotency-key"

# What reading the status line raises when the peer closed or reset the
# connection before answering: RemoteDisconnected (a ConnectionResetError) is
# an empty status line; a TLS peer that closes without close_notify gives
# SSLEOFError.
_CLOSED_BEFORE_ANSWER = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)
_NO_RESPONSE_MARK = "_microrequests_no_response"


class _StatusLineResponse(http.client.HTTPResponse):
    """Marks a failure that happened before any status line was read."""

    def _read_status(self) -> tuple[str, int, str]:
        try:
            return super()._read_status()  # type: ignore[misc, no-any-return]
        except _CLOSED_BEFORE_ANSWER as exc:
            setattr(exc, _NO_RESPONSE_MARK, True)
            raise


class PoolCounters:
    """What one host's pool did. Plain ``+=`` on these attributes involves no
    call and no jump, so the GIL makes it exact on CPython without a lock on
    the request path (on a free-threaded build the figures are approximate).
    """

    __slots__ = ("connections_opened", "discards", "requests")

    def __init__(self) -> None:
        self.connections_opened = 0
        self.requests = 0
        self.discards = 0


class _CountingMixin:
    _microrequests_counters: PoolCounters | None = None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        # Every TCP connect counts, including reconnects of a pooled
        # connection object (after idle expiry, a stale replay, a drop).
        if self._microrequests_counters is not None:
            self._microrequests_counters.connections_opened += 1


class _HTTPConnection(_CountingMixin, HTTPConnection):
    response_class = _StatusLineResponse


class _HTTPSConnection(_CountingMixin, HTTPSConnection):
    response_class = _StatusLineResponse


class _CountingQueue(queue.LifoQueue[Any]):
    """urllib3 discards a returned connection when this raises Full."""

    counters: PoolCounters

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        try:
            super().put(item, block, timeout)
        except queue.Full:
            self.counters.discards += 1
            raise


@dataclasses.dataclass(frozen=True)
class PoolOptions:
    keepalive_expiry: float | None = None
    pool_timeout: float | None = None


def _replayable(method: str, body: object, headers: Mapping[str, str] | None) -> bool:
    if not (body is None or isinstance(body, (bytes, bytearray, str))):
        return False  # a stream or a generator may not be readable twice
    if method.upper() in REPLAYABLE_METHODS:
        return True
    return headers is not None and any(k.lower() == IDEMPOTENCY_KEY for k in headers)


class _PoolMixin:
    """Behaviour shared by the HTTP and HTTPS pools; ``options`` is set per adapter."""

    options: PoolOptions
    host: str
    port: int | None
    counters: PoolCounters

    def _new_pool_queue(self, maxsize: int) -> queue.LifoQueue[Any]:
        # Called from the pool's __init__: the counters start here.
        self.counters = PoolCounters()
        q = _CountingQueue(maxsize)
        q.counters = self.counters
        return q

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        conn._microrequests_counters = self.counters
        return conn

    def idle_connections(self) -> int:
        q = getattr(self, "pool", None)
        if q is None:
            return 0
        return sum(1 for conn in list(q.queue) if conn is not None and conn.sock is not None)

    def _get_conn(self, timeout: float | None = None) -> Any:
        if timeout is None:
            # requests never passes a pool timeout, so without this a blocked
            # pool waits for ever.
            timeout = self.options.pool_timeout
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        expiry = self.options.keepalive_expiry
        idle_since = getattr(conn, "_microrequests_idle_since", None)
        if (
            expiry is not None
            and idle_since is not None
            and conn.sock is not None
            and time.monotonic() - idle_since > expiry
        ):
            log.debug("closing connection to %s:%s idle for over %ss", self.host, self.port, expiry)
            conn.close()  # it reconnects on use: a fresh connection
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn._microrequests_idle_since = time.monotonic()
        super()._put_conn(conn)  # type: ignore[misc]

    def _make_request(self, conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        reused = conn.sock is not None
        self.counters.requests += 1
        try:
            return super()._make_request(conn, method, url, *args, **kwargs)  # type: ignore[misc]
        except _CLOSED_BEFORE_ANSWER as exc:
            body = kwargs.get("body", args[0] if args else None)
            headers = kwargs.get("headers", args[1] if len(args) > 1 else None)
            if not (
                reused
                and getattr(exc, _NO_RESPONSE_MARK, False)
                and _replayable(method, body, headers)
            ):
                raise
            log.debug(
                "%s %s: pooled connection to %s:%s closed before answering (%r); "
                "sending again on a fresh connection",
                method,
                url,
                self.host,
                self.port,
                exc,
            )
            conn.close()
            self.counters.requests += 1
            return super()._make_request(conn, method, url, *args, **kwargs)  # type: ignore[misc]


class _HTTPPool(_PoolMixin, HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_PoolMixin, HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


@functools.cache
def pool_classes(options: PoolOptions) -> dict[str, type[HTTPConnectionPool]]:
    """Pool classes carrying ``options``; one pair per distinct options."""
    return {
        "http": type("HTTPConnectionPool", (_HTTPPool,), {"options": options}),
        "https": type("HTTPSConnectionPool", (_HTTPSPool,), {"options": options}),
    }
