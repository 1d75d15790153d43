from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

import microrequests
from microrequests._loopback import LoopbackServer


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv
        # Close our pools before the server goes, so no client socket
        # outlives the test and trips a ResourceWarning in a later one.
        microrequests.close_all()


@pytest.fixture(autouse=True)
def _fresh_manager() -> Iterator[None]:
    microrequests.close_all()
    yield
    microrequests.close_all()
    gc.collect()


@pytest.fixture
def no_ca_bundle_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these override session.verify (requests #3829); some
    # machines set them.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
