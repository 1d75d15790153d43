"""Count the connected sockets pooled by every live microrequests session."""

from __future__ import annotations

from requests.adapters import HTTPAdapter

from microrequests._session import live_sessions


def open_pooled_connections() -> int:
    count = 0
    for session in live_sessions():
        for adapter in session.adapters.values():
            if not isinstance(adapter, HTTPAdapter):
                continue
            for pool in list(adapter.poolmanager.pools._container.values()):
                queue = pool.pool
                if queue is not None:
                    count += sum(1 for c in list(queue.queue) if c is not None and c.sock)
    return count
