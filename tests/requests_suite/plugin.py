"""pytest plugin: run requests' own test suite against microrequests.Session.

run.sh copies it into requests' source tree as ``microrequests_suite_plugin``
and loads it with ``-p``.
``MICROREQUESTS_SUITE_RETRIES=requests`` (the default) configures the session
with requests' own retry default, ``Retry(0, read=False)``, so the suite
compares behaviour; ``=microrequests`` keeps microrequests' default
(``Retry(total=1, status_forcelist=[500, 502])``).
"""

from __future__ import annotations

import os
import sys

import requests
import requests.sessions
from urllib3.util.retry import Retry

import microrequests

_RETRIES = os.environ.get("MICROREQUESTS_SUITE_RETRIES", "requests")


class SuiteSession(microrequests.Session):
    def __init__(self) -> None:
        if _RETRIES == "requests":
            super().__init__(max_retries=Retry(0, read=False))
        else:
            super().__init__()


def pytest_configure() -> None:
    if os.environ.get("MICROREQUESTS_SUITE_STOCK") == "1":
        return  # the baseline run: stock requests.Session
    # requests.get() and friends build sessions.Session(); tests use both names.
    requests.Session = SuiteSession  # type: ignore[misc]
    requests.sessions.Session = SuiteSession  # type: ignore[misc]


def pytest_sessionstart() -> None:
    # Proof, in the run's output, of which Session the suite used (straight to
    # the real stderr: pytest captures sys.stdout/stderr and -q hides headers).
    session_class = f"{requests.Session.__module__}.{requests.Session.__qualname__}"
    print(f"requests.Session is {session_class}", file=sys.__stderr__, flush=True)
