"""``PooledAdapter``: requests' ``HTTPAdapter`` on microrequests' pools.

Besides the pools (``_pool.py``), it answers three of ``HTTPAdapter``'s
per-request steps for less than requests does, each only where its answer is
requests' own (see ``_prepare.py`` for the rule): the urllib3 pool key,
the request path without proxies, and cookie extraction from responses that
set none.
"""

from __future__ import annotations

import logging
import os
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from requests import adapters as requests_adapters
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from urllib3 import poolmanager as urllib3_poolmanager
from urllib3.connection import port_by_scheme
from urllib3.exceptions import ClosedPoolError, EmptyPoolError

from ._exceptions import PoolTimeout
from ._pool import PoolOptions, pool_classes
from ._prepare import MIRRORED, STOCK_EXTRACT_COOKIES_TO_JAR, sets_no_cookie

log = logging.getLogger("microrequests")

# A pool closed by close_all() between the adapter looking it up and taking a
# connection from it raises ClosedPoolError before anything is sent, so the
# request can always be tried again on the manager's fresh pool. Bounded, in
# case something closes pools in a tight loop.
_CLOSED_POOL_ATTEMPTS = 3
# Pool keys remembered per adapter (one per host and TLS setting in use);
# cleared wholesale when reached, as urllib3's own pool count is bounded.
_MAX_POOL_KEYS = 1024
_STOCK_BUILD_CONNECTION_POOL_KEY_ATTRIBUTES = getattr(
    HTTPAdapter, "build_connection_pool_key_attributes", None
)


def _close_pool(pool: Any) -> None:
    pool.close()


def extract_cookies(extract: Any, jar: Any, request: Any, raw: Any) -> None:
    # requests' extract_cookies_to_jar(jar, request, raw), skipped where it
    # would add nothing (see _prepare.py).
    if extract is STOCK_EXTRACT_COOKIES_TO_JAR and sets_no_cookie(jar, raw):
        return
    extract(jar, request, raw)


class PooledAdapter(HTTPAdapter):
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

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._prepare(self.poolmanager)
        # (scheme, netloc, verify, is a directory, cert) -> (urllib3 pool key, context)
        self._pool_keys: dict[tuple[object, ...], tuple[Any, dict[str, Any]]] = {}

    def get_connection_with_tls_context(
        self,
        request: PreparedRequest,
        verify: Any,
        proxies: dict[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        """requests' own, without recomputing urllib3's pool key each time.

        Without proxies, requests asks ``PoolManager.connection_from_host()``,
        which merges the pool arguments and normalises them into a pool key
        (about 10 us). Both depend only on the manager, the URL's scheme, host
        and port, ``verify`` (and whether a ``verify`` path is a directory,
        which is still asked every time for HTTPS, as requests does) and
        ``cert``, so the key is remembered per adapter. Anything else
        (proxies, an overridden step, an invalid URL) goes requests' way.
        """
        manager = self.poolmanager
        if (
            proxies
            or not MIRRORED
            or type(self).build_connection_pool_key_attributes
            is not _STOCK_BUILD_CONNECTION_POOL_KEY_ATTRIBUTES
            or type(manager) is not urllib3_poolmanager.PoolManager
        ):
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        try:
            parsed = urlsplit(cast(str, request.url))
            scheme = parsed.scheme.lower()
            key = (
                scheme,
                parsed.netloc,  # what host and port are read from
                type(verify),
                verify,
                # requests asks on every request whether a verify path is a
                # CA directory or a bundle. Plain HTTP pools drop TLS
                # arguments (urllib3's _new_pool), so there the answer only
                # names the pool, and the first one computed is kept.
                isinstance(verify, str) and scheme != "http" and os.path.isdir(verify),
                type(cert),
                cert,
            )
            found = self._pool_keys.get(key)
        except (ValueError, TypeError):  # an invalid URL, or an unhashable verify or cert
            found = key = None
        if found is None:
            found = self._pool_key(request, verify, cert)
            if found is None:
                return super().get_connection_with_tls_context(request, verify, proxies, cert)
            if key is not None:
                if len(self._pool_keys) >= _MAX_POOL_KEYS:
                    self._pool_keys.clear()
                self._pool_keys[key] = found
        pool_key, context = found
        # urllib3 takes the context only to build a missing pool, and edits it.
        return manager.connection_from_pool_key(pool_key, request_context=dict(context))

    def _pool_key(
        self, request: PreparedRequest, verify: Any, cert: Any
    ) -> tuple[Any, dict[str, Any]] | None:
        # urllib3's PoolManager.connection_from_host() and
        # connection_from_context(), up to the pool key; None where they
        # would raise or warn (requests' way will).
        try:
            host_params, pool_kwargs = self.build_connection_pool_key_attributes(
                request, verify, cert
            )
        except ValueError:
            return None
        manager = self.poolmanager
        if not host_params["host"]:
            return None
        context = manager._merge_pool_kwargs(pool_kwargs)
        context["scheme"] = host_params["scheme"] or "http"
        port = host_params["port"]
        if port is None:
            port = port_by_scheme.get(context["scheme"].lower(), 80)
        context["port"] = port
        context["host"] = host_params["host"]
        key_fn = manager.key_fn_by_scheme.get(context["scheme"].lower())
        if "strict" in context or not key_fn:
            return None
        return key_fn(context), context

    def request_url(self, request: PreparedRequest, proxies: dict[str, str] | None) -> str:
        # Without proxies requests' answer is the path; it parses the URL
        # twice to find that out.
        if not proxies and MIRRORED:
            return request.path_url
        return super().request_url(request, proxies)

    def build_response(self, req: PreparedRequest, resp: Any) -> Response:
        """requests' own, line for line, except that cookie extraction
        skips a response that sets none (see ``_prepare.py``)."""
        if not MIRRORED:
            return super().build_response(req, resp)
        ra: Any = requests_adapters  # names it imported, looked up dynamically
        response: Response = ra.Response()
        response.status_code = getattr(resp, "status", None)  # type: ignore[assignment]
        response.headers = ra.CaseInsensitiveDict(getattr(resp, "headers", {}))
        response.encoding = ra.get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = response.raw.reason
        url: str | bytes = cast("str | bytes", req.url)
        if isinstance(url, bytes):
            response.url = url.decode("utf-8")
        else:
            response.url = url
        extract_cookies(ra.extract_cookies_to_jar, response.cookies, req, resp)
        response.request = req
        response.connection = self
        return response

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
