"""``microrequests.Session``: a ``requests.Session`` that survives fork.

Every instance registers itself (weakly) in ``_registry`` so that
:func:`microrequests.close_all` and the at-fork handler can reach sessions the
manager never handed out: ones users built directly, and per-thread ones. See
the theory of operation in ``_manager.py`` for how the pieces fit.
"""

from __future__ import annotations

import http.cookiejar
import logging
import os
import threading
import weakref
from collections.abc import Iterable
from typing import Any, cast

import requests
from requests import sessions as requests_sessions
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Request, Response
from urllib3 import poolmanager as urllib3_poolmanager
from urllib3.exceptions import ClosedPoolError, EmptyPoolError

from ._config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_POOL_CONNECTIONS,
    DEFAULT_POOL_MAXSIZE,
    PoolConfig,
    RetriesArg,
    TimeoutArg,
    explain_bad_call,
)
from ._environ import CACHEABLE, environ_proxies
from ._exceptions import PoolTimeout
from ._fork import drop_inherited_connections
from ._merge import merge_setting
from ._pool import PoolOptions, pool_classes

log = logging.getLogger("microrequests")

# A pool closed by close_all() between the adapter looking it up and taking a
# connection from it raises ClosedPoolError before anything is sent, so the
# request can always be tried again on the manager's fresh pool. Bounded, in
# case something closes pools in a tight loop.
_CLOSED_POOL_ATTEMPTS = 3


def _close_pool(pool: Any) -> None:
    pool.close()


class _PooledAdapter(HTTPAdapter):
    """``HTTPAdapter`` with microrequests' pools (``_pool.py``: stale
    keep-alive replay, ``keepalive_expiry``, ``pool_timeout`` and counters),
    which raises :class:`PoolTimeout` instead of urllib3's ``EmptyPoolError``,
    and whose pools are closed, not just forgotten.

    urllib3 2's ``PoolManager.clear()`` and LRU eviction drop pools and leave
    their sockets to the garbage collector. Here they are closed at once (idle
    connections now, in-flight ones when handed back), which is what
    ``close_all()`` promises. A request that fetched a pool just before it
    was closed gets ``ClosedPoolError`` before sending anything, and is sent
    again on a fresh pool.
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "_options"]  # noqa: RUF012 - requests' shape

    def __init__(self, *args: Any, options: PoolOptions, **kwargs: Any) -> None:
        self._options = options  # read by init_poolmanager(), called from super().__init__
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._prepare(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Called on every proxied request; the manager is cached after the first.
        new = proxy not in self.proxy_manager
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if new:
            self._prepare(manager)
        return manager

    def _prepare(self, manager: Any) -> None:
        # clear() calls this after releasing the container lock: no I/O
        # happens under it (urllib3's RecentlyUsedContainer.clear()).
        manager.pools.dispose_func = _close_pool
        # Our pools (stale-connection replay, keepalive_expiry, pool_timeout),
        # except where the manager brought its own (SOCKS proxies).
        if manager.pool_classes_by_scheme == urllib3_poolmanager.pool_classes_by_scheme:
            manager.pool_classes_by_scheme = dict(pool_classes(self._options))

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        for attempt in range(1, _CLOSED_POOL_ATTEMPTS + 1):
            try:
                return super().send(request, *args, **kwargs)
            except EmptyPoolError as exc:
                # requests lets this urllib3 exception through unwrapped.
                pool = exc.pool
                raise PoolTimeout(
                    f"no connection to {pool.host}:{pool.port} became free within "
                    f"pool_timeout={self._options.pool_timeout}s "
                    f"(pool_maxsize={self._pool_maxsize}, pool_block=True)",
                    request=request,
                ) from exc
            except requests.exceptions.ConnectionError as exc:
                closed = bool(exc.args) and isinstance(exc.args[0], ClosedPoolError)
                if not closed or attempt == _CLOSED_POOL_ATTEMPTS:
                    raise
                log.debug("pool closed under %s %s; sending again", request.method, request.url)
        raise AssertionError("unreachable")  # pragma: no cover


class _Registry:
    """Weak set of every live ``Session`` in this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: weakref.WeakSet[Session] = weakref.WeakSet()

    def add(self, session: Session) -> None:
        with self.lock:
            self.sessions.add(session)

    def snapshot(self) -> list[Session]:
        with self.lock:
            return list(self.sessions)

    def after_fork_in_child(self) -> None:
        # Single-threaded here: the lock may have been held by a parent
        # thread at the moment of fork, so it is replaced, not taken.
        self.lock = threading.Lock()
        for session in list(self.sessions):
            session._after_fork_in_child()


_registry = _Registry()
os.register_at_fork(after_in_child=_registry.after_fork_in_child)


def _close_adapters(adapters: Iterable[requests.adapters.BaseAdapter]) -> None:
    # Module-level and given the adapters, not the session: a finalizer that
    # captured the session would keep it alive for ever.
    for adapter in adapters:
        adapter.close()


class Session(requests.Session):
    """A ``requests.Session`` with pooled connections that is fork-safe.

    Apart from how its connections are pooled it behaves exactly like
    ``requests.Session``. With no arguments it uses the 0.1.x defaults: an
    ``HTTPAdapter`` on ``http://`` and ``https://`` with
    ``pool_connections=100``, ``pool_maxsize=50`` and
    ``max_retries=Retry(total=1, status_forcelist=[500, 502])``.

    Thread-safety: sending from many threads at once is safe. Changing
    session-level state (``headers``, ``auth``, ``cookies`` by hand, mounts)
    while other threads send is not; configure first, then share.

    Fork: in a child process (``os.fork``, multiprocessing's ``fork``,
    gunicorn, celery prefork) every ``Session`` forgets the connections it
    inherited, without doing I/O on them, and opens its own. The parent keeps
    its connections. This holds for sessions kept in module globals too.

    Raises ``TypeError`` for an argument of the wrong type (``bool`` is not
    an int here) and ``ValueError`` for one out of range, naming it.
    """

    @explain_bad_call
    def __init__(
        self,
        max_retries: RetriesArg = DEFAULT_MAX_RETRIES,
        pool_connections: int = DEFAULT_POOL_CONNECTIONS,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        *,
        pool_size: int | None = None,
        pool_block: bool = False,
        keepalive_expiry: float | None = None,
        pool_timeout: float | None = None,
        timeout: TimeoutArg = None,
    ) -> None:
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
        super().__init__()
        self._pool_config = config
        options = PoolOptions(
            keepalive_expiry=config.keepalive_expiry, pool_timeout=config.pool_timeout
        )
        for prefix in ("https://", "http://"):
            self.mount(
                prefix,
                _PooledAdapter(
                    pool_connections=config.pool_connections,
                    pool_maxsize=config.pool_maxsize,
                    max_retries=config.retries,
                    pool_block=config.pool_block,
                    options=options,
                ),
            )
        self._start_tracking()

    def _start_tracking(self) -> None:
        self._pid = os.getpid()
        self._fork_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_adapters, list(self.adapters.values()))
        _registry.add(self)

    def __repr__(self) -> str:
        c = self._pool_config
        return (
            f"<microrequests.Session pool_connections={c.pool_connections} "
            f"pool_maxsize={c.pool_maxsize} pool_block={c.pool_block} "
            f"max_retries={c.retries!r}>"
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._start_tracking()

    # Same shape as requests' own (a list the pickling code reads).
    __attrs__ = [*requests.Session.__attrs__, "_pool_config"]  # noqa: RUF012

    def mount(self, prefix: str, adapter: requests.adapters.BaseAdapter) -> None:
        super().mount(prefix, adapter)
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            # Re-arm the finalizer so a dead thread's session also closes
            # adapters mounted after construction.
            finalizer.detach()
            self._finalizer = weakref.finalize(self, _close_adapters, list(self.adapters.values()))

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        # Second line of defence: a fork that bypassed os.register_at_fork
        # (a C extension calling fork(2) directly) is caught by a pid check,
        # which costs one getpid() per request.
        if self._pid != os.getpid():
            self._after_unhandled_fork()
        # requests passes timeout=None explicitly when the caller gave none
        # (requests #3070), so a setdefault() would never apply.
        if kwargs.get("timeout") is None and self._pool_config.timeout is not None:
            kwargs["timeout"] = self._pool_config.timeout
        return super().send(request, **kwargs)

    def prepare_request(self, request: Request) -> PreparedRequest:
        """requests' own, with a cheaper ``merge_setting`` (see ``_merge.py``).

        Kept line for line with ``requests.Session.prepare_request``; CI runs
        requests' own test suite against this class (tests/requests_suite).
        Helpers are looked up in ``requests.sessions`` at call time, as
        requests does, so patching them there (tests do) reaches us too.
        """
        rs: Any = requests_sessions  # names it imported, looked up dynamically
        url = cast("str | bytes", request.url)
        method = cast(str, request.method)
        cookies = request.cookies or {}
        # Bootstrap CookieJar.
        if not isinstance(cookies, http.cookiejar.CookieJar):
            cookies = rs.cookiejar_from_dict(cookies)
        # Merge with session cookies
        merged_cookies = rs.merge_cookies(
            rs.merge_cookies(rs.RequestsCookieJar(), self.cookies), cookies
        )
        # Set environment's basic authentication if not explicitly set.
        auth = request.auth
        if self.trust_env and not auth and not self.auth:
            auth = rs.get_netrc_auth(url)
        p: PreparedRequest = rs.PreparedRequest()
        p.prepare(
            method=method.upper(),
            url=url,
            files=request.files,
            data=request.data,
            json=request.json,
            headers=merge_setting(request.headers, self.headers, dict_class=rs.CaseInsensitiveDict),
            # Empty params encode to nothing either way; None skips requests'
            # Protocol check in _encode_params. The URL is the same.
            params=merge_setting(request.params, self.params) or None,
            auth=merge_setting(auth, self.auth),
            cookies=merged_cookies,
            hooks=rs.merge_hooks(request.hooks, self.hooks),
        )
        return p

    def merge_environment_settings(
        self,
        url: str,
        proxies: dict[str, str] | None,
        stream: bool | None,
        verify: Any,
        cert: Any,
    ) -> dict[str, Any]:
        """requests' own, with the environment's proxies from a cache.

        Kept line for line with ``requests.Session.merge_environment_settings``
        except for where ``env_proxies`` comes from (see ``_environ.py``);
        tests/test_environ.py compares the two over generated environments.
        """
        if not (self.trust_env and CACHEABLE):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        env_proxies = environ_proxies.get(url, no_proxy)
        if proxies is not None:
            for k, v in env_proxies.items():
                proxies.setdefault(k, v)
        if verify is True or verify is None:
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
            )
        return {
            "proxies": merge_setting(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }

    def _after_fork_in_child(self) -> None:
        self._fork_lock = threading.Lock()
        self._drop_inherited_connections()

    def _after_unhandled_fork(self) -> None:
        # Other threads of the child may race here; whoever wins resets, the
        # rest see the new pid. A parent thread cannot hold this lock across
        # the fork for long: it is only ever taken for a reset, which happens
        # in children. The timeout turns that impossible case into progress
        # rather than a hang.
        acquired = self._fork_lock.acquire(timeout=5.0)
        try:
            if self._pid != os.getpid():
                self._drop_inherited_connections()
        finally:
            if acquired:
                self._fork_lock.release()

    def _drop_inherited_connections(self) -> None:
        # The cookie jar's RLock is taken on every response; a parent thread
        # may have held it at the moment of fork.
        if hasattr(self.cookies, "_cookies_lock"):
            self.cookies._cookies_lock = threading.RLock()
        for adapter in self.adapters.values():
            if isinstance(adapter, HTTPAdapter):
                drop_inherited_connections(adapter)
        # Last, so that a thread which sees the new pid also sees new pools
        # (the same ordering as redis-py's ConnectionPool.reset()).
        self._pid = os.getpid()


def drop_inherited_connections_everywhere() -> None:
    """In a freshly forked worker: every session forgets its pooled sockets.

    Unconditional (unlike the pid check), for worker hooks that run before
    the worker opened any connection of its own; it does no I/O on them.
    """
    for session in _registry.snapshot():
        with session._fork_lock:
            session._drop_inherited_connections()


def live_sessions() -> list[Session]:
    """Every ``Session`` alive in this process, in no particular order."""
    return _registry.snapshot()
