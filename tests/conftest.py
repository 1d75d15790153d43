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
