"""HTTPS: pooling, fork without close_notify, and the stale race, over real TLS."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator

import pytest
import requests
import trustme

import microrequests
from microrequests._loopback import LoopbackServer

from .helpers import get, start_child


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[LoopbackServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with LoopbackServer(tls=context) as server:
        yield server
        microrequests.close_all()


@pytest.fixture
def session(
    ca: trustme.CA, tmp_path: os.PathLike[str], no_ca_bundle_variables: None
) -> microrequests.Session:
    bundle = os.path.join(tmp_path, "ca.pem")
    ca.cert_pem.write_to_path(bundle)
    session = microrequests.init()
    session.verify = bundle
    return session


def test_https_connections_are_reused(
    tls_server: LoopbackServer, session: microrequests.Session
) -> None:
    for _ in range(50):
        get(session, tls_server.url)
    stats = tls_server.stats()
    assert stats.requests == 50
    assert stats.opened == 1


def test_untrusted_certificate_is_still_refused(tls_server: LoopbackServer) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        microrequests.init().get(tls_server.url, timeout=10)


def test_child_drops_inherited_tls_connection_without_close_notify(
    tls_server: LoopbackServer, session: microrequests.Session
) -> None:
    # A close_notify (or a shutdown) written by the child on the shared TLS
    # stream would end the parent's connection at the server.
    get(session, tls_server.url)

    def child() -> None:
        for _ in range(5):
            get(session, tls_server.url)
        microrequests.close_all()

    for _ in range(3):
        start_child(child).join()
    get(session, tls_server.url)
    stats = tls_server.stats()
    assert stats.shared_across_pids == 0
    assert stats.connections[0].open
    assert stats.connections[0].requests == 2  # the parent, before and after
    assert stats.connections[0].pids == {os.getpid()}
    assert stats.opened == 4  # one of the parent's, one per child
