"""Sending and receiving: microrequests' shortcuts against stock requests, over the wire.

``Session.send`` and ``PooledAdapter`` skip cookie extraction for responses
that set no cookie, skip requests' redirect generator when there is no
redirect, and remember urllib3 pool keys. Each test runs the same calls
through stock ``requests.Session`` and ``microrequests.Session`` against a
real loopback server and compares what the caller can see.
"""

from __future__ import annotations

import http.cookiejar
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests

import microrequests


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        # /set/<header name>/<cookie>  answers 200 with that header
        # /redirect/<n>               302 to /redirect/<n-1>, setting r<n>=1; /redirect/0 is 200
        # anything else               200, echoing the Cookie header it got
        parts = self.path.split("/")
        headers: list[tuple[str, str]] = []
        status, body = 200, (self.headers.get("Cookie") or "").encode()
        if parts[1] == "set":
            headers.append((parts[2], parts[3]))
        elif parts[1] == "redirect" and int(parts[2]) > 0:
            status = 302
            headers.append(("Location", f"/redirect/{int(parts[2]) - 1}"))
            headers.append(("Set-Cookie", f"r{parts[2]}=1"))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _seen(session: requests.Session, base: str, path: str, **kwargs: Any) -> Any:
    r = session.get(base + path, timeout=10, **kwargs)
    return (
        r.status_code,
        r.text,
        sorted(r.cookies.items()),
        [h.status_code for h in r.history],
        sorted(session.cookies.items()),
        r.next.url if r.next else None,
    )


PATHS = [
    "/plain",
    "/set/Set-Cookie/a=1",
    "/plain",
    "/set/set-cookie/b=2",  # any case
    "/set/SET-COOKIE/c=3; Path=/",
    "/set/Set-Cookie2/d=4",  # not stored by the default policy, but looked at
    "/set/X-Other/e=5",
    "/redirect/2",
    "/plain",
]


def test_cookies_and_redirects_match_stock_requests(base_url: str) -> None:
    ours, stock = microrequests.Session(), requests.Session()
    for path in PATHS:
        assert _seen(ours, base_url, path) == _seen(stock, base_url, path), path
    for path in ("/redirect/1", "/plain"):
        assert _seen(ours, base_url, path, allow_redirects=False) == _seen(
            stock, base_url, path, allow_redirects=False
        ), path


class _CountingJar(requests.cookies.RequestsCookieJar):
    """A jar of the user's own: every response must reach it, as in requests."""

    def __init__(self) -> None:
        super().__init__()
        self.extracted = 0

    def extract_cookies(self, response: Any, request: Any) -> None:
        self.extracted += 1
        super().extract_cookies(response, request)


def test_a_jar_of_ones_own_sees_every_response(base_url: str) -> None:
    counts = []
    for session in (microrequests.Session(), requests.Session()):
        session.cookies = _CountingJar()
        for path in PATHS:
            session.get(base_url + path, timeout=10)
        counts.append(session.cookies.extracted)
    assert counts[0] == counts[1] > len(PATHS)  # redirects reach it more than once


def test_a_patched_extract_cookies_to_jar_is_called(base_url: str) -> None:
    with mock.patch(
        "requests.sessions.extract_cookies_to_jar", wraps=requests.cookies.extract_cookies_to_jar
    ) as extract:
        microrequests.Session().get(base_url + "/plain", timeout=10)
    assert extract.call_count == 1


def _pool_keys(session: requests.Session) -> set[Any]:
    adapter = session.get_adapter("http://x")
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    return set(adapter.poolmanager.pools.keys())


def _stock_like_ours() -> requests.Session:
    # The same pool sizes (part of urllib3's pool key) on stock requests.
    stock = requests.Session()
    for prefix in ("https://", "http://"):
        stock.mount(prefix, requests.adapters.HTTPAdapter(pool_connections=100, pool_maxsize=50))
    return stock


def test_pool_keys_match_stock_requests(
    base_url: str, tmp_path: Path, no_ca_bundle_variables: None
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    calls: list[dict[str, Any]] = [
        {},
        {"verify": False},
        {"verify": str(bundle)},
        {"verify": str(tmp_path)},  # a directory: ca_cert_dir
        {"cert": str(bundle)},
        {"cert": (str(bundle), str(bundle))},
        {"verify": False},
        {},
    ]
    ours, stock = microrequests.Session(), _stock_like_ours()
    for kwargs in calls:
        for session in (ours, stock):
            session.get(base_url + "/plain", timeout=10, **kwargs)
        assert _pool_keys(ours) == _pool_keys(stock), kwargs
    # A host name rather than an address, and another port: other pools.
    host_url = base_url.replace("127.0.0.1", "localhost")
    for session in (ours, stock):
        session.get(host_url + "/plain", timeout=10)
    assert _pool_keys(ours) == _pool_keys(stock)
    assert len(_pool_keys(ours)) == 7  # six TLS settings on one host, one on another


def test_a_verify_path_is_looked_at_on_every_https_request(
    tmp_path: Path, no_ca_bundle_variables: None
) -> None:
    # requests asks whether a verify path is a directory on every request;
    # for HTTPS so do we (a changed answer is a different TLS setting).
    session = microrequests.Session()
    adapter = session.get_adapter("https://x")
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    request = session.prepare_request(requests.Request("GET", "https://svc.example/"))
    with mock.patch("os.path.isdir", return_value=False):
        first = adapter.get_connection_with_tls_context(request, str(tmp_path / "b"))
    with mock.patch("os.path.isdir", return_value=False) as isdir:
        again = adapter.get_connection_with_tls_context(request, str(tmp_path / "b"))
    assert isdir.call_count == 1
    assert again is first
    with mock.patch("os.path.isdir", return_value=True):
        second = adapter.get_connection_with_tls_context(request, str(tmp_path / "b"))
    assert second is not first
    assert getattr(second, "ca_cert_dir", None) == str(tmp_path / "b")
    assert getattr(first, "ca_certs", None) == str(tmp_path / "b")


def test_close_all_then_the_remembered_key_gets_a_new_pool(base_url: str) -> None:
    session = microrequests.init(max_retries=0, pool_connections=7)
    session.get(base_url + "/plain", timeout=10)
    adapter = session.get_adapter(base_url)
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    (key,) = adapter.poolmanager.pools.keys()
    before = adapter.poolmanager.pools[key]
    microrequests.close_all()
    session.get(base_url + "/plain", timeout=10)
    assert adapter.poolmanager.pools.keys() == {key}
    after = adapter.poolmanager.pools[key]
    assert after is not before
    assert before.pool is None


def test_invalid_urls_fail_as_in_requests() -> None:
    for url in ("http://:80/", "http://svc:99999/", "http://[::1/"):
        errors = []
        for session in (microrequests.Session(), requests.Session()):
            with pytest.raises(requests.exceptions.RequestException) as info:
                session.get(url, timeout=1)
            errors.append((type(info.value), str(info.value)))
        assert errors[0] == errors[1], url


def test_cookie_jar_policy_of_ones_own_is_respected(base_url: str) -> None:
    # A policy that refuses every cookie: stored nothing, in both.
    results = []
    for session in (microrequests.Session(), requests.Session()):
        session.cookies.set_policy(
            http.cookiejar.DefaultCookiePolicy(blocked_domains=["127.0.0.1"])
        )
        session.get(base_url + "/set/Set-Cookie/a=1", timeout=10)
        results.append(sorted(session.cookies.items()))
    assert results[0] == results[1] == []
