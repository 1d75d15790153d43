"""``microrequests.Session``: a ``requests.Session`` that survives fork.

Every instance registers itself (weakly) in ``_registry`` so that
:func:`microrequests.close_all` and the at-fork handler can reach sessions the
manager never handed out: ones users built directly, and per-thread ones. See
the theory of operation in ``_manager.py`` for how the pieces fit.
"""

from __future__ import annotations

import http.cookiejar
import os
import threading
import weakref
from collections.abc import Iterable
from typing import Any, cast

import requests
from requests import sessions as requests_sessions
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Request, Response

from ._adapter import PooledAdapter, extract_cookies
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
from ._fork import drop_inherited_connections
from ._merge import is_mapping, merge_setting
from ._pool import PoolOptions
from ._prepare import (
    MIRRORED,
    STOCK_COOKIEJAR_FROM_DICT,
    STOCK_GET_NETRC_AUTH,
    STOCK_MERGE_COOKIES,
    STOCK_PREPARE,
    STOCK_PREPARE_COOKIES,
    STOCK_PREPARE_HEADERS,
    is_empty_stock_jar,
    netrc_auth,
    prepare_headers,
    prepared_url,
)

_STOCK_RESOLVE_REDIRECTS = requests.Session.resolve_redirects
_STOCK_GET_REDIRECT_TARGET = requests.Session.get_redirect_target


def _merge_headers(
    p: PreparedRequest, request_headers: Any, session_headers: Any, dict_class: Any
) -> Any:
    # merge_setting(request_headers, session_headers, dict_class). With no
    # headers on the request (requests' Request makes them {}) and no None
    # to drop, that is a copy of the session's headers, which requests'
    # prepare_headers() only reads, to copy them again: hand it the original.
    if (
        is_mapping(request_headers)
        and not request_headers
        and is_mapping(session_headers)
        and type(p).prepare is STOCK_PREPARE
        and type(p).prepare_headers is STOCK_PREPARE_HEADERS
        and not any(v is None for v in session_headers.values())
    ):
        return session_headers
    return merge_setting(request_headers, session_headers, dict_class=dict_class)


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
                PooledAdapter(
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

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # noqa: PLR0912
        """requests' own, plus a fork check and the default timeout.

        Kept line for line with ``requests.Session.send`` except that cookie
        extraction skips responses that set none (``_prepare.py``).
        """
        # Second line of defence: a fork that bypassed os.register_at_fork
        # (a C extension calling fork(2) directly) is caught by a pid check,
        # which costs one getpid() per request.
        if self._pid != os.getpid():
            self._after_unhandled_fork()
        # requests passes timeout=None explicitly when the caller gave none
        # (requests #3070), so a setdefault() would never apply.
        if kwargs.get("timeout") is None and self._pool_config.timeout is not None:
            kwargs["timeout"] = self._pool_config.timeout
        if not MIRRORED:
            return super().send(request, **kwargs)
        rs: Any = requests_sessions  # names it imported, looked up dynamically
        kwargs.setdefault("stream", self.stream)
        kwargs.setdefault("verify", self.verify)
        kwargs.setdefault("cert", self.cert)
        if "proxies" not in kwargs:
            kwargs["proxies"] = rs.resolve_proxies(request, self.proxies, self.trust_env)
        if isinstance(request, Request):  # type: ignore[unreachable]  # callers' mistake
            raise ValueError("You can only send PreparedRequests.")
        allow_redirects = kwargs.pop("allow_redirects", True)
        stream = kwargs.get("stream")
        hooks = request.hooks
        adapter = self.get_adapter(url=cast(str, request.url))
        start = rs.preferred_clock()
        r = adapter.send(request, **kwargs)
        elapsed = rs.preferred_clock() - start
        r.elapsed = rs.timedelta(seconds=elapsed)
        r = rs.dispatch_hook("response", hooks, r, **kwargs)
        if r.history:
            for resp in r.history:
                extract_cookies(rs.extract_cookies_to_jar, self.cookies, resp.request, resp.raw)
        extract_cookies(rs.extract_cookies_to_jar, self.cookies, request, r.raw)
        if allow_redirects:
            if (
                type(self).resolve_redirects is _STOCK_RESOLVE_REDIRECTS
                and type(self).get_redirect_target is _STOCK_GET_REDIRECT_TARGET
                and not self.get_redirect_target(r)
            ):
                # requests' generator would stop at its first step: this test.
                history = []
            else:
                gen = self.resolve_redirects(r, request, **kwargs)
                history = [resp for resp in gen]
        else:
            history = []
        if history:
            history.insert(0, r)
            r = history.pop()
            r.history = history
        if not allow_redirects:
            try:  # noqa: SIM105 - requests' own lines
                r._next = next(  # type: ignore[assignment]  # yields requests here
                    self.resolve_redirects(r, request, yield_requests=True, **kwargs)
                )
            except StopIteration:
                pass
        if not stream:
            r.content  # noqa: B018 - reads the body, as requests does
        return r

    def prepare_request(self, request: Request) -> PreparedRequest:
        """requests' own, with the remembered parts of ``_prepare.py``.

        Kept line for line with ``requests.Session.prepare_request`` (and,
        inlined, ``PreparedRequest.prepare``), except where a step is
        answered by ``_prepare.py`` or ``_merge.py``; each of those is used
        only while what it replaces is requests' own. CI runs requests' own
        test suite against this class (tests/requests_suite), and
        tests/test_prepare.py compares the two over generated requests.
        Helpers are looked up in ``requests.sessions`` at call time, as
        requests does, so patching them there (tests do) reaches us too.
        """
        if not MIRRORED:
            return super().prepare_request(request)
        rs: Any = requests_sessions  # names it imported, looked up dynamically
        url = cast("str | bytes", request.url)
        method = cast(str, request.method)
        cookies = request.cookies or {}
        if (
            not cookies
            and rs.cookiejar_from_dict is STOCK_COOKIEJAR_FROM_DICT
            and rs.merge_cookies is STOCK_MERGE_COOKIES
        ):
            # No cookies with the request: merging in the empty jar that
            # requests would build from {} changes nothing.
            merged_cookies = rs.merge_cookies(rs.RequestsCookieJar(), self.cookies)
        else:
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
            get = rs.get_netrc_auth
            auth = netrc_auth(url) if get is STOCK_GET_NETRC_AUTH else get(url)
        p: PreparedRequest = rs.PreparedRequest()
        # The arguments of requests' p.prepare(...) call, in its order.
        method = method.upper()
        headers = _merge_headers(p, request.headers, self.headers, rs.CaseInsensitiveDict)
        # Empty params encode to nothing either way; None skips requests'
        # Protocol check in _encode_params. The URL is the same.
        params = merge_setting(request.params, self.params) or None
        auth = merge_setting(auth, self.auth)
        hooks = rs.merge_hooks(request.hooks, self.hooks)
        known = prepared_url(p, url) if params is None else None
        if known is None or type(p).prepare is not STOCK_PREPARE:
            p.prepare(
                method=method,
                url=url,
                files=request.files,
                data=request.data,
                json=request.json,
                headers=headers,
                params=params,
                auth=auth,
                cookies=merged_cookies,
                hooks=hooks,
            )
            return p
        # PreparedRequest.prepare(), step by step.
        p.prepare_method(method)
        p.url, url_auth = known  # prepare_url(url, None)
        prepare_headers(p, headers)
        if is_empty_stock_jar(merged_cookies) and type(p).prepare_cookies is STOCK_PREPARE_COOKIES:
            p._cookies = merged_cookies  # and no Cookie header
        else:
            p.prepare_cookies(merged_cookies)
        p.prepare_body(request.data, request.files, request.json)
        # prepare_auth(None, url) looks at the URL's own credentials, and
        # does nothing more when there are none.
        if auth is None and any(url_auth):
            auth = url_auth
        if auth is not None:
            p.prepare_auth(auth, url)
        p.prepare_hooks(hooks)
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
        # Before 2.34, requests fails on proxies=None; leave that to it.
        if not (self.trust_env and CACHEABLE) or (proxies is None and not MIRRORED):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        env_proxies, ca_bundle = environ_proxies.get(url, no_proxy)
        if proxies is not None:
            for k, v in env_proxies.items():
                proxies.setdefault(k, v)
        if verify is True or verify is None:
            # os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            verify = ca_bundle or verify
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
