"""The singleton manager behind :func:`init` and :func:`close_all`.

Theory of operation
===================

What is kept
------------
* ``_Manager._process``: ``{PoolConfig: Session}`` for ``scope="process"``,
  shared by every thread of the process.
* ``_Manager._local``: a ``threading.local`` holding ``{PoolConfig: Session}``
  for ``scope="thread"``, plus the *generation* it was filled in.
* ``_session._registry``: a ``WeakSet`` of every live ``Session``, whoever made
  it. It is what ``close_all()`` and the fork handler walk.

Locks, and their order
----------------------
There are two: ``_Manager._lock`` (guards ``_process`` and ``_generation``) and
``_Registry.lock`` (guards the weak set). The only nesting is manager lock,
then registry lock (a session built under the manager lock registers itself).
No lock is held while doing I/O: ``close_all()`` swaps state out under the
lock and closes sessions after releasing it, as urllib3's
``RecentlyUsedContainer.clear()`` does.

``init()``
----------
The hot path takes no lock: the arguments' validated form comes from
``_validated`` (a plain dict keyed by the exact argument values and types,
filled without a lock: two threads may store equal entries), then a dict
lookup (process scope) or a thread-local lookup (thread scope). Only a miss
in process scope takes the manager lock and looks again before building, so
when many threads race on the first call exactly one session is created
(urllib3's ``connection_from_pool_key`` shape).
Thread scope needs no lock for lookup or creation: only its own thread ever
sees its dict.

``close_all()``
---------------
Under the manager lock: bump the generation and replace ``_process`` with an
empty dict (readers that already fetched the old dict finish with the old
session, which is harmless: it still works, and is closed or collected). Then,
without the lock, close every session in a snapshot of the registry. Each
thread's next ``init()`` sees the generation moved and starts a new dict, so
``init()`` returns new sessions afterwards in every thread. A request caught
between its adapter fetching a pool and that pool being closed gets
urllib3's ``ClosedPoolError`` before sending anything; the adapter sends it
again on a fresh pool (``_adapter.PooledAdapter``), so close_all() during
traffic loses no request. It is idempotent and registered with ``atexit``.

Threads that die
----------------
A thread's ``threading.local`` dict is released when the thread ends, which
drops the last reference to its sessions; each session carries a
``weakref.finalize`` (over its adapters, never the session itself) that
closes its pools. Nothing has to poll for dead threads.

Fork
----
``os.register_at_fork(after_in_child=...)`` runs in the child while it is
still single-threaded. There, the registry first replaces its lock, then every
session drops its inherited connections without I/O and without taking any
inherited lock (see ``_fork.py``), then the manager replaces its own lock. A
parent thread may have held any of these locks at the moment of fork; none
of them is ever acquired in the child before being replaced, so the child
cannot deadlock on them. The parent is untouched.

``register_at_fork`` does not see every fork (a C extension may call
``fork(2)`` directly), so ``Session.send`` also compares ``os.getpid()`` with
the pid it last reset in, and resets under its own lock when they differ,
assigning the pid last (redis-py's ``_checkpid`` pattern).
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Dict

from ._config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_POOL_CONNECTIONS,
    DEFAULT_POOL_MAXSIZE,
    PoolConfig,
    RetriesArg,
    Scope,
    TimeoutArg,
    explain_bad_call,
    normalise_scope,
)
from ._session import Session, live_sessions

_Sessions = Dict[PoolConfig, Session]


def _session_from_config(config: PoolConfig) -> Session:
    return Session(
        max_retries=config.retries,
        pool_connections=config.pool_connections,
        pool_maxsize=config.pool_maxsize,
        pool_block=config.pool_block,
        keepalive_expiry=config.keepalive_expiry,
        pool_timeout=config.pool_timeout,
        timeout=config.timeout,
    )


class _Manager:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._process: _Sessions = {}
        self._local = threading.local()

    def get(self, config: PoolConfig, scope: Scope) -> Session:
        if scope == "process":
            session = self._process.get(config)
            if session is not None:
                return session
            with self._lock:
                session = self._process.get(config)
                if session is None:
                    session = _session_from_config(config)
                    self._process[config] = session
                return session

        local = self._local
        generation = self._generation
        sessions: _Sessions | None = getattr(local, "sessions", None)
        if sessions is None or local.generation != generation:
            sessions = local.sessions = {}
            local.generation = generation
        session = sessions.get(config)
        if session is None:
            session = sessions[config] = _session_from_config(config)
        return session

    def close_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._process = {}
        for session in live_sessions():
            session.close()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()


_manager = _Manager()
os.register_at_fork(after_in_child=_manager.after_fork_in_child)

# init() is called on every request in worker code, and validating its
# arguments costs more than the lookup it leads to (about 20 us against 1 us),
# so the outcome is remembered per exact argument values and types. Written
# without a lock: two threads may both validate the same arguments and store
# equal results. Bounded in case a caller generates arguments (timeouts from
# a computation, say); beyond the bound calls are validated every time.
_MAX_VALIDATED = 256
_validated: dict[tuple[object, ...], tuple[PoolConfig, Scope]] = {}


@explain_bad_call
def init(
    max_retries: RetriesArg = DEFAULT_MAX_RETRIES,
    pool_connections: int = DEFAULT_POOL_CONNECTIONS,
    pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
    *,
    pool_size: int | None = None,
    pool_block: bool = False,
    keepalive_expiry: float | None = None,
    pool_timeout: float | None = None,
    timeout: TimeoutArg = None,
    scope: Scope = "process",
) -> Session:
    """Return the pooled :class:`Session` for these arguments.

    The same (normalised) arguments in the same scope return the very same
    session, so calling ``init()`` on every request is cheap and reuses
    connections. Different arguments give a different session with its own
    pool.

    :param max_retries: an int ``n`` (``Retry(total=n,
        status_forcelist=[500, 502])``) or a ``urllib3.util.Retry``.
    :param pool_connections: how many per-host pools to cache (>= 1).
    :param pool_maxsize: connections kept per host (>= 1).
    :param pool_size: alias of ``pool_maxsize``; giving both with different
        values is a ``ValueError``.
    :param pool_block: block when a host's pool is exhausted instead of
        opening (and later discarding) an extra connection.
    :param keepalive_expiry: seconds; a pooled connection idle longer than
        this is closed instead of reused. Set it below your servers' and load
        balancers' idle timeouts.
    :param pool_timeout: seconds to wait for a free connection with
        ``pool_block=True``; then :class:`PoolTimeout`. ``None`` waits for ever.
    :param timeout: the timeout (seconds, or a ``(connect, read)`` tuple) for
        calls that pass none; a per-call ``timeout=`` wins.
    :param scope: ``"process"`` (one session shared by every thread) or
        ``"thread"`` (one per thread, closed when the thread ends).

    Thread-safe and fork-safe: see :class:`Session`. Raises ``TypeError`` for
    a wrong type or an unknown keyword and ``ValueError`` for a value out of
    range, naming the parameter; a failed call registers nothing.
    """
    args = (
        max_retries,
        pool_connections,
        pool_maxsize,
        pool_size,
        pool_block,
        keepalive_expiry,
        pool_timeout,
        timeout,
        scope,
    )
    # Types are part of the key: 1, 1.0 and True are equal and hash alike,
    # but only some of them are valid. The pool_maxsize default is its own
    # type (_DefaultInt), so "not given" stays distinct from 50.
    key = (
        args,
        tuple(map(type, args)),
        tuple(map(type, timeout)) if type(timeout) is tuple else (),
    )
    try:
        config, valid_scope = _validated[key]
    except (KeyError, TypeError):  # not seen yet, or unhashable (reported below)
        pass
    else:
        return _manager.get(config, valid_scope)
    config = PoolConfig.from_arguments(
        max_retries=max_retries,
        pool_connections=pool_connections,
        pool_maxsize=pool_maxsize,
        pool_size=pool_size,
        pool_block=pool_block,
        keepalive_expiry=keepalive_expiry,
        pool_timeout=pool_timeout,
        timeout=timeout,
    )
    valid_scope = normalise_scope(scope)
    # A Retry object is mutable and compared by value in PoolConfig, so only
    # calls that pass an int (the common case) are remembered.
    if type(max_retries) is int and len(_validated) < _MAX_VALIDATED:
        _validated[key] = (config, valid_scope)
    return _manager.get(config, valid_scope)


def close_all() -> None:
    """Close every pooled connection of every ``Session`` in this process.

    Reaches sessions from :func:`init` in every scope and thread and sessions
    built directly. Idempotent; safe while other threads send or call
    :func:`init`, whose requests are not lost; registered with ``atexit``.
    Afterwards :func:`init` returns new sessions.
    """
    _manager.close_all()


atexit.register(close_all)
