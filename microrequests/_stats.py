"""``microrequests.stats()``: what each live session's pools did, per host."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from requests.adapters import HTTPAdapter

from ._pool import _PoolMixin
from ._session import Session, live_sessions


@dataclasses.dataclass(frozen=True)
class HostStats:
    """One host's pool in one session."""

    connections_opened: int
    requests: int
    idle: int
    discards: int

    @property
    def reuse_ratio(self) -> float:
        """Requests per connection opened (0.0 before the first)."""
        return self.requests / self.connections_opened if self.connections_opened else 0.0

    def __add__(self, other: HostStats) -> HostStats:
        return HostStats(
            self.connections_opened + other.connections_opened,
            self.requests + other.requests,
            self.idle + other.idle,
            self.discards + other.discards,
        )


@dataclasses.dataclass(frozen=True)
class SessionStats:
    """One live :class:`Session`; ``hosts`` maps ``scheme://host:port`` to its pool."""

    session_id: int
    description: str
    hosts: Mapping[str, HostStats]

    @property
    def total(self) -> HostStats:
        return sum(self.hosts.values(), HostStats(0, 0, 0, 0))


def _pools(session: Session) -> Iterator[Any]:
    for adapter in list(session.adapters.values()):
        if not isinstance(adapter, HTTPAdapter):
            continue
        for manager in [adapter.poolmanager, *list(adapter.proxy_manager.values())]:
            with manager.pools.lock:  # not the request path: a brief snapshot
                yield from list(manager.pools._container.values())


def stats() -> tuple[SessionStats, ...]:
    """A snapshot of every live session's pools: connections opened (every
    TCP connect, reconnects included), requests sent (replays of stale
    connections included), the reuse ratio, idle connections, and
    connections discarded because the pool was full.

    Pools that ``close_all()`` or LRU eviction closed are gone from it. A
    forked child's sessions start from zero; each ``scope="thread"`` session
    is its own entry. Taking it locks each pool container briefly; sending
    requests never takes a lock for it.
    """
    snapshot = []
    for session in live_sessions():
        hosts: dict[str, HostStats] = {}
        for pool in _pools(session):
            if not isinstance(pool, _PoolMixin):
                continue
            key = f"{pool.scheme}://{pool.host}:{pool.port}"  # type: ignore[attr-defined]
            counters = pool.counters
            figures = HostStats(
                counters.connections_opened,
                counters.requests,
                pool.idle_connections(),
                counters.discards,
            )
            hosts[key] = hosts[key] + figures if key in hosts else figures
        snapshot.append(SessionStats(id(session), repr(session), hosts))
    return tuple(snapshot)
