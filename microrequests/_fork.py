"""Dropping connections inherited across ``fork()``.

A forked child holds copies of its parent's socket descriptors. Using one
interleaves two processes' bytes on one TCP (or TLS) stream; shutting one
down, or sending a TLS close_notify on it, breaks the parent's connection.
The only safe thing to do in the child is to forget them: close the child's
copy of each descriptor (``close(2)`` is not I/O on the connection: the parent
still holds the socket, so no FIN goes out) and start with empty pools.

The child also inherits the *locks* of every urllib3 structure, possibly held
by a parent thread that does not exist here. So nothing below takes a lock
inherited from the parent: the adapter gets a fresh ``PoolManager`` first,
and the old one is then emptied by reading its containers directly, with its
locks replaced so that urllib3's own finalizers cannot block on them later.
This all runs while the child is still single-threaded (in the
``os.register_at_fork`` handler) or under the session's fork lock.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import Any

from requests.adapters import HTTPAdapter

log = logging.getLogger("microrequests")


def _forget_socket(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    conn.sock = None
    # SSLSocket.close() drops the SSL object without SSL_shutdown, so no
    # close_notify is written; for a plain socket it is close(2) alone.
    with contextlib.suppress(OSError):
        sock.close()


def _reset_queue_locks(q: queue.Queue[Any]) -> None:
    q.mutex = threading.Lock()
    q.not_empty = threading.Condition(q.mutex)
    q.not_full = threading.Condition(q.mutex)
    q.all_tasks_done = threading.Condition(q.mutex)


def _abandon_pool_manager(manager: Any) -> int:
    """Empty an inherited urllib3 PoolManager without locks or I/O."""
    dropped = 0
    pools = getattr(manager, "pools", None)
    container = getattr(pools, "_container", None)
    if pools is None or container is None:  # pragma: no cover - urllib3 changed shape
        return dropped
    pools.lock = threading.RLock()
    for pool in list(container.values()):
        q = getattr(pool, "pool", None)
        if q is None:
            continue
        _reset_queue_locks(q)
        conns = [c for c in list(q.queue) if c is not None]
        q.queue.clear()
        # A closed pool closes (rather than re-queues) a connection handed
        # back to it; nothing in the child should hand one back, but if a
        # response object survived the fork it must not revive the old pool.
        pool.pool = None
        for conn in conns:
            _forget_socket(conn)
            dropped += 1
    container.clear()
    return dropped


def drop_inherited_connections(adapter: HTTPAdapter) -> int:
    """Give ``adapter`` fresh pools; forget the inherited ones. Returns a count."""
    old = [adapter.poolmanager, *adapter.proxy_manager.values()]
    adapter.proxy_manager = {}
    # A fresh manager first, so the adapter never points at a half-emptied one.
    adapter.init_poolmanager(
        adapter._pool_connections, adapter._pool_maxsize, block=adapter._pool_block
    )
    dropped = sum(_abandon_pool_manager(manager) for manager in old)
    if dropped:
        log.debug("dropped %d connection(s) inherited across fork", dropped)
    return dropped
