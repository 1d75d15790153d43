"""Environment proxies from the cache equal stock requests', whatever the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import microrequests
from microrequests._loopback import LoopbackServer

from .helpers import get

VARIABLES = [
    "http_proxy", "HTTP_PROXY", "Http_Proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
    "ALL_PROXY", "ftp_proxy", "no_proxy", "NO_PROXY", "REQUEST_METHOD", "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
]  # fmt: skip
HOSTS = [
    "users-svc", "users-svc.default.svc", "api.example.com", "example.com", "10.1.2.3",
    "10.9.0.1", "192.168.0.5", "localhost", "127.0.0.1", "EXAMPLE.com",
]  # fmt: skip
NO_PROXY_ENTRIES = [
    "example.com", ".example.com", "users-svc", "10.0.0.0/8", "10.1.2.3", "192.168.0.0/16",
    "localhost", "127.0.0.1", "api.example.com:8080", "*", "", " users-svc ",
]  # fmt: skip
PROXY_URLS = ["http://proxy:3128", "http://user:pw@proxy.corp:8080", "socks5://s:1080", ""]


def _value(name: str) -> st.SearchStrategy[str]:
    if name.lower() == "no_proxy":
        return st.lists(st.sampled_from(NO_PROXY_ENTRIES), max_size=4).map(",".join)
    if name == "REQUEST_METHOD":
        return st.sampled_from(["GET", "POST"])
    if name.endswith("CA_BUNDLE"):
        return st.sampled_from(["/etc/ssl/a.pem", "/opt/b.pem", ""])
    return st.sampled_from(PROXY_URLS)


environments = st.sets(st.sampled_from(VARIABLES), max_size=7).flatmap(
    lambda names: st.fixed_dictionaries({name: _value(name) for name in sorted(names)})
)
urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "https"]),
    st.sampled_from(HOSTS),
    st.sampled_from(["", ":80", ":443", ":8080", ":5000"]),
    st.sampled_from(["/", "/api/users/1", "/x?q=1"]),
)
call_proxies = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "no_proxy": st.sampled_from(["example.com", "10.0.0.0/8", "users-svc,localhost"]),
            "http": st.sampled_from(["http://explicit:1"]),
            "all://users-svc": st.sampled_from(["http://per-host:2"]),
        },
    ),
)
verifies = st.sampled_from([True, None, False, "/custom/ca.pem"])

# Long-lived, like application sessions: the cache carries across examples,
# so every example also checks that a changed environment is noticed.
OURS = microrequests.Session()
STOCK = requests.Session()


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in {n.upper() for n in VARIABLES}}
    with mock.patch.dict(os.environ, {**clean, **values}, clear=True):
        yield


def _merged(session: requests.Session, url: str, proxies: Any, verify: Any) -> Any:
    copied = dict(proxies) if proxies is not None else None
    return session.merge_environment_settings(url, copied, None, verify, None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    env=environments,
    targets=st.lists(urls, min_size=1, max_size=8),
    proxies=call_proxies,
    verify=verifies,
    other=environments,
)
# Edge cases a random draw rarely combines: a host:port no_proxy entry, a CIDR,
# a leading dot, "*", and httpoxy's rule, each next to URLs it must tell apart.
@example(
    env={"http_proxy": "http://proxy:3128", "no_proxy": "api.example.com:8080"},
    targets=["http://api.example.com:8080/", "http://api.example.com:5000/"],
    proxies={},
    verify=True,
    other={},
)
@example(
    env={"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "10.0.0.0/8,.example.com"},
    targets=["https://10.1.2.3/", "https://192.168.0.5/", "https://api.example.com/"],
    proxies={},
    verify=None,
    other={"https_proxy": "http://proxy:3128"},
)
@example(
    env={
        "HTTP_PROXY": "http://proxy:3128",
        "REQUEST_METHOD": "GET",
        "all_proxy": "socks5://s:1080",
    },
    targets=["http://users-svc/", "https://users-svc/"],
    proxies={"no_proxy": "users-svc"},
    verify="/custom/ca.pem",
    other={"no_proxy": "*", "http_proxy": "http://proxy:3128"},
)
# The same variables in another order: requests' answer follows that order.
@example(
    env={"all_proxy": "http://user:pw@proxy.corp:8080", "https_proxy": "http://proxy:3128"},
    targets=["http://users-svc/"],
    proxies={"http": "http://explicit:1"},
    verify=True,
    other={"https_proxy": "http://proxy:3128", "all_proxy": "http://user:pw@proxy.corp:8080"},
)
def test_merged_settings_equal_stock_requests(
    env: dict[str, str], targets: list[str], proxies: Any, verify: Any, other: dict[str, str]
) -> None:
    # Several URLs per environment, each with the drawn per-call proxies and
    # with none: hosts, ports and no_proxy arguments must not share an entry.
    with environment(env):
        for url in targets:
            no_per_call: dict[str, str] = {}
            for per_call in (proxies, no_per_call):
                expected = _merged(STOCK, url, per_call, verify)
                assert _merged(OURS, url, per_call, verify) == expected, (url, per_call)
                assert _merged(OURS, url, per_call, verify) == expected, "from the cache"
    with environment(other):  # the environment changed between requests
        for url in targets:
            assert _merged(OURS, url, proxies, verify) == _merged(STOCK, url, proxies, verify)


def test_trust_env_false_ignores_the_environment() -> None:
    session = microrequests.Session()
    session.trust_env = False
    with environment({"http_proxy": "http://proxy:3128", "REQUESTS_CA_BUNDLE": "/a.pem"}):
        merged = _merged(session, "http://users-svc/", {}, True)
    assert merged == {"proxies": {}, "stream": False, "verify": True, "cert": None}


def test_environment_proxies_route_real_requests_and_follow_changes() -> None:
    # Through a real "proxy" (a loopback server receiving absolute-form
    # request targets) and directly, switching with the environment.
    with LoopbackServer() as proxy, LoopbackServer() as target:
        session = microrequests.init()
        url = target.url + "/x"
        with environment({"http_proxy": proxy.url}):
            get(session, url)
            get(session, url)
            assert proxy.stats().paths == {f"GET {url}": 2}
            os.environ["no_proxy"] = "127.0.0.1"
            get(session, url)
            assert target.stats().paths == {"GET /x": 1}
            del os.environ["no_proxy"]
            os.environ["REQUEST_METHOD"] = "GET"  # httpoxy: lowercase http_proxy still counts
            get(session, url)
            assert proxy.stats().paths == {f"GET {url}": 3}
        with environment({"HTTP_PROXY": proxy.url, "REQUEST_METHOD": "GET"}):
            get(session, url)  # httpoxy: uppercase HTTP_PROXY is ignored in a CGI context
            assert target.stats().paths == {"GET /x": 2}
        with environment({}):
            get(session, url)
            assert target.stats().paths == {"GET /x": 3}


def test_a_patched_get_environ_proxies_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests looks it up in requests.sessions at call time, and tests patch
    # it there; the cache must not keep serving the unpatched answer.
    session = microrequests.Session()
    with environment({}):
        assert _merged(session, "http://users-svc/", {}, True)["proxies"] == {}
        monkeypatch.setattr(
            requests.sessions, "get_environ_proxies", lambda url, no_proxy=None: {"http": "p:1"}
        )
        assert _merged(session, "http://users-svc/", {}, True)["proxies"] == {"http": "p:1"}


def test_a_patched_get_netrc_auth_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", lambda url: ("user", "pass"))
    prepared = microrequests.Session().prepare_request(requests.Request("GET", "http://svc/"))
    assert prepared.headers["Authorization"] == "Basic dXNlcjpwYXNz"
