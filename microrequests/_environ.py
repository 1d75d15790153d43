"""Environment proxies, computed once per host until ``os.environ`` changes.

(And, with them, the CA bundle variables requests reads for ``verify``.)

``requests.Session.request`` asks ``get_environ_proxies()`` on every call, and
that walks every variable of ``os.environ`` several times in Python:
1.4 ms per request with 385 variables here, more with Kubernetes' seven
variables per service. The answer depends only on the environment and on
the URL's host and port, so it is cached per ``(netloc, no_proxy)`` and
thrown away whenever the environment differs from the snapshot it was
computed against. Comparing ``os.environ``'s own dict with that snapshot is
one C-level dict comparison (about 5 us at 385 variables, 17 us at 1,435),
plus one of its key order (the order of the proxies dict requests returns
follows the environment's), and it sees every change made through
``os.environ``, including a replaced ``os.environ`` object (pytest's
``monkeypatch.setattr``).

On a miss requests' own ``get_environ_proxies`` computes the
answer, so semantics (case rules, httpoxy's REQUEST_METHOD rule, no_proxy
with CIDRs and ports) are requests' own. Only where ``proxy_bypass`` reads
nothing but the environment: not on macOS or Windows, whose system proxy
settings can change under us.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from requests import sessions as requests_sessions

CACHEABLE = sys.platform not in ("darwin", "win32")
_MAX_HOSTS = 1024  # per environment snapshot; cleared wholesale when reached

_Key = tuple[object, object]
_Compute = Callable[..., dict[str, str]]


class _Snapshot:
    __slots__ = ("ca_bundle", "compute", "data", "environ", "order", "proxies")

    def __init__(self, environ: object, data: Mapping[object, object], compute: _Compute) -> None:
        self.compute = compute
        self.environ = environ
        self.data = dict(data)
        self.order = list(data)
        self.proxies: dict[_Key, dict[str, str]] = {}
        self.ca_bundle = _ca_bundle()


def _ca_bundle() -> str | None:
    # What requests' merge_environment_settings reads for verify.
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


class EnvironProxies:
    def __init__(self) -> None:
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    def get(self, url: str, no_proxy: str | None) -> tuple[dict[str, str], str | None]:
        """What ``get_environ_proxies(url, no_proxy)`` returns now (do not
        mutate it), and ``REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE``."""
        # Looked up where requests looks it up, at call time: a patched
        # requests.sessions.get_environ_proxies (tests do that) is honoured,
        # and replacing it starts a new snapshot.
        compute: _Compute = getattr(requests_sessions, "get_environ_proxies")  # noqa: B009
        environ = os.environ
        data = getattr(environ, "_data", None)
        if data is None:  # not CPython's os._Environ: nothing to compare cheaply
            return compute(url, no_proxy=no_proxy), _ca_bundle()
        snapshot = self._snapshot
        if (
            snapshot is None
            or snapshot.compute is not compute
            or snapshot.environ is not environ
            or snapshot.data != data
            # Equal dicts, but a variable removed and set again moves to the
            # end, and with it the key order of requests' answer.
            or list(data) != snapshot.order
        ):
            snapshot = _Snapshot(environ, data, compute)
            self._snapshot = snapshot
        try:
            # requests reads only the host and port of the URL, both taken
            # from its netloc: the same netloc always gets the same answer.
            key: _Key = (urlsplit(url).netloc, no_proxy)
        except ValueError:  # an invalid URL: let requests raise as it does
            return compute(url, no_proxy=no_proxy), snapshot.ca_bundle
        proxies = snapshot.proxies.get(key)
        if proxies is None:
            # Computed outside any lock: two threads may both compute it,
            # and both get the same answer.
            proxies = compute(url, no_proxy=no_proxy)
            with self._lock:
                if len(snapshot.proxies) >= _MAX_HOSTS:
                    snapshot.proxies.clear()
                snapshot.proxies[key] = proxies
        return proxies, snapshot.ca_bundle

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()


environ_proxies = EnvironProxies()
os.register_at_fork(after_in_child=environ_proxies.after_fork_in_child)
