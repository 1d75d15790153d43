"""Per-request work of requests' preparation whose answer can be remembered.

Each helper here answers exactly what a named requests function answers, for
less, and is only used while that function is requests' own (not patched or
overridden); ``_session.py`` and ``_adapter.py`` check that before each use. What each one keeps
and why that cannot go stale:

``prepared_url(url)``
    ``PreparedRequest.prepare_url(url, None)`` and the ``get_auth_from_url``
    that ``prepare_auth`` runs on its result. Both are pure functions of the
    URL string (parsing, IDNA, requoting), so a bounded LRU cache keyed by the
    string holds. About 8 us per request, more with IDNA. Errors are not
    cached: they are raised again each time, by requests' own code.

``prepare_headers(p, headers)``
    ``p.prepare_headers(headers)``, which validates every header of every
    request with two regular expressions; a session sends the same few
    headers again and again. Validity is a pure function of the (name,
    value) pair, so each distinct valid pair (of exact ``str`` or ``bytes``
    types) is checked once; invalid ones raise requests' error every time.

``netrc_auth(url)``
    ``requests.utils.get_netrc_auth(url)``. requests expands ``~`` (two
    environment look-ups), tests whether each candidate file exists, and when
    one does, reads and parses the whole file, on every request. Here the
    candidates are still looked at on every call, with one ``stat()`` each,
    so a ``.netrc`` that appears, changes or goes is seen at once; only the
    ``~`` expansion (keyed by ``NETRC``, ``HOME`` and the uid it reads) and
    the parsed file (keyed by the ``stat()`` identity: device, inode, size,
    mtime and ctime) are remembered. A file changed in the last second is
    parsed again each time: file times tick coarsely, and two quick writes
    of the same size could otherwise look alike.

``is_empty_stock_jar(jar)`` and ``sets_no_cookie(jar, raw)``
    ``get_cookie_header()`` on an empty stock ``RequestsCookieJar`` is
    ``None`` (no cookie, and the jar's policy only consults cookies); and
    ``extract_cookies_to_jar()`` adds nothing when the response has no
    ``Set-Cookie`` or ``Set-Cookie2`` header: the stock jar's
    ``make_cookies`` reads only those two. Each costs a ``MockRequest`` (a
    URL parse) and the jar's lock otherwise, three times per request.

Everything remembered here is plain data (``lru_cache``, a set, tuples):
filled without locks, as two threads racing on a miss compute the same
answer, and still right in a forked child, as none of it is a socket or a
lock.
"""

from __future__ import annotations

import functools
import os
import time
from http.client import HTTPMessage
from http.cookiejar import CookieJar
from netrc import NetrcParseError, netrc
from typing import Any
from urllib.parse import urlparse

import requests
from requests import cookies as requests_cookies
from requests import models as requests_models
from requests import utils as requests_utils
from requests.models import PreparedRequest


def _release(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return ()


#: The requests release (major, minor) whose code the mirrored methods in
#: ``_session.py`` and ``_adapter.py`` copy, and whose own test suite CI runs
#: against them.
#: requests changes these functions between releases (2.33 and 2.34 differ
#: in ``get_netrc_auth`` and ``request_url``), so with any other release
#: installed ``Session`` uses requests' own methods and only the environment
#: cache (which calls requests' own function) stays. To add a release, see
#: CONTRIBUTING.md.
MIRRORED_RELEASE = (2, 34)
MIRRORED = _release(requests.__version__) == MIRRORED_RELEASE  # type: ignore[attr-defined]

#: requests' own functions, to tell whether a caller patched them.
STOCK_GET_NETRC_AUTH = requests_utils.get_netrc_auth
STOCK_EXTRACT_COOKIES_TO_JAR = requests_cookies.extract_cookies_to_jar
STOCK_COOKIEJAR_FROM_DICT = requests_cookies.cookiejar_from_dict
STOCK_MERGE_COOKIES = requests_cookies.merge_cookies
STOCK_PREPARE = PreparedRequest.prepare
STOCK_PREPARE_COOKIES = PreparedRequest.prepare_cookies
STOCK_PREPARE_HEADERS = PreparedRequest.prepare_headers
_STOCK_CHECK_HEADER_VALIDITY = requests_utils.check_header_validity
_STOCK_PREPARE_URL = PreparedRequest.prepare_url
_STOCK_PREPARE_AUTH = PreparedRequest.prepare_auth
_STOCK_GET_AUTH_FROM_URL = requests_utils.get_auth_from_url
_models: Any = requests_models  # names it imported, looked up dynamically
_STOCK_EXTRACT_COOKIES = CookieJar.extract_cookies
_STOCK_MAKE_COOKIES = CookieJar.make_cookies
_STOCK_ADD_COOKIE_HEADER = CookieJar.add_cookie_header


@functools.lru_cache(maxsize=1024)
def _prepared_url(url: str) -> tuple[str, tuple[str, str]]:
    p = PreparedRequest()
    _STOCK_PREPARE_URL(p, url, None)
    prepared = str(p.url)
    return prepared, requests_utils.get_auth_from_url(prepared)


def prepared_url(p: PreparedRequest, url: object) -> tuple[str, tuple[str, str]] | None:
    """What ``p.prepare_url(url, None)`` sets ``p.url`` to, with the auth
    ``p.prepare_auth(None)`` would read from it; ``None``: do it requests' way."""
    cls = type(p)
    # A str subclass may convert differently (requests calls str() on it).
    if (
        type(url) is not str
        or cls.prepare_url is not _STOCK_PREPARE_URL
        or cls.prepare_auth is not _STOCK_PREPARE_AUTH
        or _models.get_auth_from_url is not _STOCK_GET_AUTH_FROM_URL
    ):
        return None
    return _prepared_url(url)


_MAX_VALID_HEADERS = 4096
_valid_headers: set[tuple[str | bytes, str | bytes]] = set()
_PLAIN = (str, bytes)


def prepare_headers(p: PreparedRequest, headers: Any) -> None:
    """``p.prepare_headers(headers)``, validating each distinct header once."""
    check = _models.check_header_validity
    if type(p).prepare_headers is not STOCK_PREPARE_HEADERS or check is not (
        _STOCK_CHECK_HEADER_VALIDITY
    ):
        p.prepare_headers(headers)
        return
    prepared = _models.CaseInsensitiveDict()
    if headers:
        for header in headers.items():
            name, value = header
            # Exact types only: a subclass could compare equal to a valid
            # pair and still hold something else.
            plain = type(name) in _PLAIN and type(value) in _PLAIN
            if not (plain and header in _valid_headers):
                check(header)
                if plain and len(_valid_headers) < _MAX_VALID_HEADERS:
                    _valid_headers.add(header)
            prepared[_models.to_native_string(name)] = value
    p.headers = prepared


_NETRC_KEY = os.environ.encodekey("NETRC")
_HOME_KEY = os.environ.encodekey("HOME")


@functools.lru_cache(maxsize=16)
def _netrc_locations(netrc_file: str | None, home: object, uid: int) -> tuple[str, ...]:
    # What requests' loop computes with expanduser(); the arguments are all
    # that expanduser reads (HOME, else the password database entry of uid),
    # and it is called while os.environ holds them.
    if netrc_file is not None:
        return (os.path.expanduser(netrc_file),)
    return tuple(os.path.expanduser(f"~/{f}") for f in requests_utils.NETRC_FILES)


def _parse_netrc(path: str) -> netrc | Exception:
    try:
        return netrc(path)
    except (NetrcParseError, OSError) as exc:
        return exc  # requests skips netrc auth for these: remember that too


_remembered_netrc = functools.lru_cache(maxsize=8)(
    lambda path, identity: _parse_netrc(path)  # identity: part of the key only
)

# File times come from a clock that ticks every few milliseconds, so two
# writes of the same size within one tick can leave the same identity. A
# file changed this recently is read again, as requests does; once it has
# been still for longer, any write moves its times past the remembered ones.
_SETTLED_NS = 1_000_000_000


def _parsed_netrc(path: str, st: os.stat_result) -> netrc | Exception:
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    if time.time_ns() - changed < _SETTLED_NS:
        return _parse_netrc(path)
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return _remembered_netrc(path, identity)


def netrc_auth(url: str | bytes) -> tuple[str, str] | None:
    """``requests.utils.get_netrc_auth(url)``, line for line where it reads files."""
    if isinstance(url, bytes):
        url = url.decode("utf-8")
    environ = os.environ
    if type(environ) is os._Environ:
        # os.environ.get(), without decoding (or a KeyError) on each call.
        data = environ._data  # type: ignore[attr-defined]
        netrc_file, home = data.get(_NETRC_KEY), data.get(_HOME_KEY)
        if netrc_file is not None:
            netrc_file = environ.decodevalue(netrc_file)
    else:
        netrc_file, home = environ.get("NETRC"), environ.get("HOME")
    getuid = getattr(os, "getuid", None)
    # expanduser() reads the password database only without HOME.
    uid = getuid() if getuid is not None and home is None else -1
    locations = _netrc_locations(netrc_file, home, uid)
    for location in locations:
        try:  # os.path.exists(), and the identity of what exists, in one stat()
            st = os.stat(location)
        except (OSError, ValueError):
            continue
        break
    else:
        return None
    host = urlparse(url).hostname
    if host is None:
        return None
    parsed = _parsed_netrc(location, st)
    if isinstance(parsed, Exception):
        return None
    found = parsed.authenticators(host)
    if found and any(found):
        login_i = 0 if found[0] else 1
        return (found[login_i] or "", found[2] or "")
    return None


def _stock_jar(jar: object) -> bool:
    cls = type(jar)
    return (
        cls is requests_cookies.RequestsCookieJar
        and cls.extract_cookies is _STOCK_EXTRACT_COOKIES
        and cls.make_cookies is _STOCK_MAKE_COOKIES
        and cls.add_cookie_header is _STOCK_ADD_COOKIE_HEADER
    )


def is_empty_stock_jar(jar: object) -> bool:
    """True when requests' ``get_cookie_header(jar, request)`` must be ``None``."""
    return _stock_jar(jar) and not jar._cookies  # type: ignore[attr-defined]


def sets_no_cookie(jar: object, raw: Any) -> bool:
    """True when ``extract_cookies_to_jar(jar, request, raw)`` would add nothing."""
    if not _stock_jar(jar):
        return False
    original = getattr(raw, "_original_response", None)
    if not original:
        return True  # requests returns at once too
    msg = original.msg
    if type(msg) is not HTTPMessage:
        return False
    # What make_cookies() asks with get_all("Set-Cookie2") and
    # get_all("Set-Cookie"), in one pass (names compare case-insensitively).
    return not any(name.lower() in _SET_COOKIE for name in msg.keys())  # noqa: SIM118


_SET_COOKIE = frozenset(("set-cookie", "set-cookie2"))
