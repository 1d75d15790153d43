"""A WSGI app that calls a backend through microrequests; run by real gunicorn.

At import (in the master, with --preload) it pools a connection to the
backend, so every worker inherits it. Each request then calls the backend
through that module-level session and through a fresh init().
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import microrequests

BACKEND = os.environ["MICROREQUESTS_TEST_BACKEND"]
SESSION = microrequests.init()
SESSION.get(BACKEND + "/import", headers={"X-Client-Pid": str(os.getpid())}, timeout=10)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    headers = {"X-Client-Pid": str(os.getpid())}
    SESSION.get(BACKEND + "/module", headers=headers, timeout=10).raise_for_status()
    microrequests.init().get(BACKEND + "/fresh", headers=headers, timeout=10).raise_for_status()
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
