"""gunicorn config: microrequests' hooks, one of them chained with a user hook."""

from __future__ import annotations

import os
from typing import Any

from microrequests.contrib import gunicorn as microrequests_hooks
from microrequests.contrib.gunicorn import post_fork  # noqa: F401 - gunicorn reads it
from tests.apps.pool_probe import open_pooled_connections


def record_exit(server: Any, worker: Any) -> None:
    # Runs after microrequests' worker_exit: what is still pooled must be 0.
    path = os.path.join(os.environ["MICROREQUESTS_TEST_MARKERS"], f"exit-{os.getpid()}")
    with open(path, "w") as marker:
        marker.write(str(open_pooled_connections()))


worker_exit = microrequests_hooks.chain(microrequests_hooks.worker_exit, record_exit)
