"""Prepared requests from microrequests equal stock requests', whatever the input.

``Session.prepare_request`` answers several steps from what it remembered
(``_prepare.py``): prepared URLs, header validity, ``.netrc`` look-ups and
empty cookie jars. These tests run the same requests through stock
``requests.Session`` and through ``microrequests.Session``, one after the
other on long-lived sessions (so every cache carries across examples), and
compare everything a ``PreparedRequest`` carries, or the error raised.
"""

from __future__ import annotations

import netrc as netrc_module
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import microrequests

HOSTS = ["svc", "users-svc.default.svc", "EXAMPLE.com", "10.1.2.3", "[::1]", "bücher.example"]
URLS = st.builds(
    lambda scheme, auth, host, port, path, query, fragment: (
        f"{scheme}://{auth}{host}{port}{path}{query}{fragment}"
    ),
    st.sampled_from(["http", "https", "HTTP"]),
    st.sampled_from(["", "user:pw@", "us%40er:p%3Aw@", ":@"]),
    st.sampled_from(HOSTS),
    st.sampled_from(["", ":8080", ":0", ":99999"]),
    st.sampled_from(["", "/", "/api/users/1", "/a b/ü", "/%7Euser/%zz", "//double"]),
    st.sampled_from(["", "?q=1", "?a=1&a=2", "?x=%20y"]),
    st.sampled_from(["", "#frag"]),
) | st.sampled_from(
    ["svc/no-scheme", "http://", "http://*.example/", "http://.svc/", "mailto:a@b", " http://svc/"]
)
HEADER_VALUES = st.sampled_from(["v", "", "a b", " lead", "x\r\ny", "bytes", None, 5])
HEADERS = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["X-Id", "Accept", "user-agent", "X-Empty", "Bad Name", "X-Bytes"]),
        HEADER_VALUES,
        max_size=3,
    ).map(lambda h: {k: (b"b" if v == "bytes" else v) for k, v in h.items()}),
)
PARAMS = st.sampled_from([None, {}, {"a": "1", "b": ["2", "3"]}, [("k", "v")], "s=1"])
COOKIES: st.SearchStrategy[Any] = st.sampled_from([None, {}, {"c": "1"}])
AUTH = st.one_of(st.none(), st.just(("u", "p")), st.just(("", "")))
BODIES: st.SearchStrategy[Any] = st.sampled_from([{}, {"f": "1"}, b"raw", "text", [("a", "b")]])
JSON = st.one_of(st.none(), st.just({"j": 1}))
METHODS = st.sampled_from(["GET", "post", "PUT", "Head", "PATCH"])


def _state(prepared: requests.PreparedRequest) -> dict[str, Any]:
    return {
        "method": prepared.method,
        "url": prepared.url,
        "headers": list(prepared.headers.items()),
        "body": prepared.body,
        "cookies": sorted((c.name, c.value, c.domain) for c in prepared._cookies or ()),
        "hooks": {k: list(v) for k, v in prepared.hooks.items()},
    }


def _outcome(session: requests.Session, request: requests.Request) -> Any:
    try:
        return _state(session.prepare_request(request))
    except Exception as exc:  # the same error, with the same message
        return (type(exc), str(exc))


def test_the_mirrored_requests_release_is_the_one_installed() -> None:
    # Otherwise Session runs requests' own methods, and the tests below would
    # check those rather than microrequests' mirror of them (the test extra
    # pins requests to MIRRORED_RELEASE).
    from microrequests import _prepare

    assert _prepare.MIRRORED, (requests.__version__, _prepare.MIRRORED_RELEASE)  # type: ignore[attr-defined]


# Long-lived, like application sessions.
OURS = microrequests.Session()
STOCK = requests.Session()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=METHODS,
    url=URLS,
    headers=HEADERS,
    params=PARAMS,
    cookies=COOKIES,
    auth=AUTH,
    data=BODIES,
    json=JSON,
    session_header=st.sampled_from([None, ("X-Session", "s"), ("Accept", None)]),
    session_cookie=st.booleans(),
    session_auth=st.booleans(),
)
def test_prepared_requests_equal_stock_requests(  # noqa: PLR0917 - hypothesis' arguments
    method: str,
    url: str,
    headers: Any,
    params: Any,
    cookies: Any,
    auth: Any,
    data: Any,
    json: Any,
    session_header: Any,
    session_cookie: bool,
    session_auth: bool,
) -> None:
    for session in (OURS, STOCK):
        session.headers = requests.utils.default_headers()
        if session_header is not None:
            session.headers[session_header[0]] = session_header[1]
        session.cookies.clear()
        if session_cookie:
            session.cookies.set("s", "v")
        session.auth = ("sess", "ion") if session_auth else None

    def request() -> requests.Request:
        return requests.Request(
            method, url, headers=headers, params=params, cookies=cookies, auth=auth,
            data=data, json=json,
        )  # fmt: skip

    expected = _outcome(STOCK, request())
    assert _outcome(OURS, request()) == expected
    assert _outcome(OURS, request()) == expected, "the second time, from the caches"


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A HOME of our own, and no NETRC."""
    env = {k: v for k, v in os.environ.items() if k not in ("NETRC", "HOME")}
    with mock.patch.dict(os.environ, {**env, "HOME": str(tmp_path)}, clear=True):
        yield tmp_path


def _auth(session: requests.Session, url: str) -> str | bytes | None:
    return session.prepare_request(requests.Request("GET", url)).headers.get("Authorization")


LONG_LIVED = microrequests.Session()  # the caches are per process; this one is untouched


def _same_auth(*urls: str) -> list[str | bytes | None]:
    seen = []
    for url in urls:
        expected = _auth(requests.Session(), url)
        assert _auth(LONG_LIVED, url) == expected, url
        seen.append(expected)
    return seen


def test_netrc_changes_are_seen_on_the_next_request(home: Path) -> None:
    netrc = home / ".netrc"
    urls = ("http://svc/", "http://other/", "http://svc:8080/x")
    assert _same_auth(*urls) == [None, None, None]

    netrc.write_text("machine svc login alice password one\n")
    first = _same_auth(*urls)
    assert first[0] is not None
    assert first[1] is None

    # Same size, rewritten at once: the stat() identity still changes.
    netrc.write_text("machine svc login alice password two\n")
    second = _same_auth(*urls)
    assert second[0] != first[0]

    netrc.write_text("default login dflt password d\n")
    assert None not in _same_auth(*urls)

    netrc.write_text("machine svc login\n")  # a parse error: requests ignores the file
    assert _same_auth(*urls) == [None, None, None]

    netrc.unlink()
    (home / "_netrc").write_text("machine other login bob password b\n")
    assert _same_auth(*urls)[1] is not None

    elsewhere = home / "elsewhere"
    elsewhere.write_text("machine svc login carol password c\n")
    os.environ["NETRC"] = str(elsewhere)
    assert _same_auth(*urls)[0] is not None
    os.environ["NETRC"] = str(home / "missing")
    assert _same_auth(*urls) == [None, None, None]
    del os.environ["NETRC"]

    other_home = home / "other-home"
    other_home.mkdir()
    os.environ["HOME"] = str(other_home)
    assert _same_auth(*urls) == [None, None, None]


def test_netrc_is_not_consulted_when_auth_is_given(home: Path) -> None:
    (home / ".netrc").write_text("machine svc login alice password one\n")
    session = microrequests.Session()
    session.auth = ("explicit", "x")
    stock = requests.Session()
    stock.auth = ("explicit", "x")
    assert _auth(session, "http://svc/") == _auth(stock, "http://svc/")
    session.trust_env = stock.trust_env = False
    session.auth = stock.auth = None
    assert _auth(session, "http://svc/") is _auth(stock, "http://svc/") is None


def test_an_invalid_header_is_refused_every_time() -> None:
    session = microrequests.Session()
    for _ in range(3):
        with pytest.raises(requests.exceptions.InvalidHeader):
            session.prepare_request(requests.Request("GET", "http://svc/", headers={"X": "a\nb"}))


def test_a_str_subclass_header_is_validated_not_recalled() -> None:
    # Equal to a remembered valid pair, but an instance of a subclass: it
    # could carry anything, so requests' check runs (and passes) again.
    class Sneaky(str):
        pass

    session = microrequests.Session()
    session.prepare_request(requests.Request("GET", "http://svc/", headers={"X": "ok"}))
    request = requests.Request("GET", "http://svc/", headers={"X": Sneaky("ok")})
    part = requests.utils._validate_header_part
    with mock.patch("requests.utils._validate_header_part", side_effect=part) as validate:
        session.prepare_request(request)
    assert validate.call_count == 2  # the subclass pair's name and value; nothing else


def test_patched_requests_functions_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast paths stand aside for anything a caller replaced.
    calls: list[str] = []
    stock_prepare_url = requests.PreparedRequest.prepare_url

    def prepare_url(self: requests.PreparedRequest, url: Any, params: Any) -> None:
        calls.append("prepare_url")
        stock_prepare_url(self, url, params)

    monkeypatch.setattr(requests.PreparedRequest, "prepare_url", prepare_url)
    monkeypatch.setattr(
        requests.models,
        "check_header_validity",
        lambda header: calls.append("check_header_validity"),
    )
    microrequests.Session().prepare_request(requests.Request("GET", "http://svc/"))
    assert "prepare_url" in calls
    assert "check_header_validity" in calls


def test_other_requests_releases_get_requests_own_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a release the mirrored methods were not checked against, Session
    # is requests' Session (plus pools and fork safety): nothing remembered.
    import microrequests._adapter
    import microrequests._session

    monkeypatch.setattr(microrequests._session, "MIRRORED", False)
    monkeypatch.setattr(microrequests._adapter, "MIRRORED", False)
    with mock.patch.object(microrequests._session, "prepared_url") as fast:
        request = requests.Request("GET", "http://user:pw@svc/a b")
        ours = microrequests.Session().prepare_request(request)
        assert _state(ours) == _state(requests.Session().prepare_request(request))
    assert fast.call_count == 0


def test_a_settled_netrc_is_parsed_once_and_changes_are_still_seen(home: Path) -> None:
    from microrequests import _prepare

    netrc = home / ".netrc"
    netrc.write_text("machine svc login alice password one\n")
    time.sleep(_prepare._SETTLED_NS / 1e9 + 0.1)
    with mock.patch("microrequests._prepare.netrc", wraps=netrc_module.netrc) as parse:
        first = _same_auth("http://svc/", "http://svc/", "http://svc/x")
        assert parse.call_count == 1  # then remembered
        # Rewritten at once with the same size: recent, so read every time.
        netrc.write_text("machine svc login alice password two\n")
        second = _same_auth("http://svc/", "http://svc/")
        assert second[0] != first[0]
        assert parse.call_count == 3
        time.sleep(_prepare._SETTLED_NS / 1e9 + 0.1)
        assert _same_auth("http://svc/", "http://svc/") == second
        assert parse.call_count == 4


def test_a_prepared_request_class_of_ones_own_is_used_step_by_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    class Mine(requests.PreparedRequest):
        def prepare_url(self, url: Any, params: Any) -> None:
            calls.append("prepare_url")
            super().prepare_url(url, params)

        def prepare_auth(self, auth: Any, url: Any = "") -> None:
            calls.append(f"prepare_auth {auth!r}")
            super().prepare_auth(auth, url)

    monkeypatch.setattr(requests.sessions, "PreparedRequest", Mine)
    prepared = microrequests.Session().prepare_request(requests.Request("GET", "http://svc/"))
    assert type(prepared) is Mine
    assert calls == ["prepare_url", "prepare_auth None"]
