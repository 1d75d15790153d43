"""A celery app whose tasks call a backend through microrequests.

Imported by the worker's main process, which pools a backend connection at
import time, before the prefork pool forks its children.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown

import microrequests
from microrequests.contrib.celery import connect_signals
from tests.apps.pool_probe import open_pooled_connections

app = Celery(
    "microrequests_test",
    broker=os.environ["MICROREQUESTS_TEST_BROKER"],
    backend=os.environ["MICROREQUESTS_TEST_RESULTS"],
)
app.conf.task_default_queue = os.environ["MICROREQUESTS_TEST_QUEUE"]
app.conf.broker_connection_retry_on_startup = True
connect_signals()
connect_signals()  # idempotent: must not connect twice

BACKEND = os.environ["MICROREQUESTS_TEST_BACKEND"]
SESSION = microrequests.init()
SESSION.get(BACKEND + "/import", headers={"X-Client-Pid": str(os.getpid())}, timeout=10)


@app.task(name="microrequests_test.call_backend")  # type: ignore[untyped-decorator]
def call_backend() -> int:
    headers = {"X-Client-Pid": str(os.getpid())}
    SESSION.get(BACKEND + "/module", headers=headers, timeout=10).raise_for_status()
    microrequests.init().get(BACKEND + "/fresh", headers=headers, timeout=10).raise_for_status()
    return os.getpid()


def _record_shutdown(**_: Any) -> None:
    # Connected after connect_signals(), so it runs after close_all().
    path = os.path.join(os.environ["MICROREQUESTS_TEST_MARKERS"], f"shutdown-{os.getpid()}")
    with open(path, "w") as marker:
        marker.write(str(open_pooled_connections()))


worker_process_shutdown.connect(_record_shutdown, weak=False)
