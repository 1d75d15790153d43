"""celery worker signals. In the module that creates your Celery app::

    from microrequests.contrib.celery import connect_signals
    connect_signals()

* ``worker_process_init`` (a prefork child has started): drop every connection
  inherited from the parent worker process, without I/O on it.
* ``worker_process_shutdown`` (a prefork child is exiting): ``close_all()``.

Only the prefork pool sends these. The ``solo``, ``threads``, ``gevent`` and
``eventlet`` pools run tasks in the worker process itself, send neither, and
need neither: there is no fork, ``init()`` hands each thread (or greenlet's
thread) the shared process session, or its own with ``scope="thread"``, and
the ``atexit`` hook closes the pools when the worker exits.
"""

from __future__ import annotations

import threading
from typing import Any

try:
    from celery.signals import worker_process_init, worker_process_shutdown
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "microrequests.contrib.celery needs celery: pip install 'microrequests[celery]'"
    ) from exc

from .._manager import close_all
from .._session import drop_inherited_connections_everywhere

__all__ = ["connect_signals"]

_lock = threading.Lock()
_connected = False


def _on_worker_process_init(**_: Any) -> None:
    drop_inherited_connections_everywhere()


def _on_worker_process_shutdown(**_: Any) -> None:
    close_all()


def connect_signals() -> None:
    """Connect microrequests to celery's worker-process signals. Idempotent."""
    global _connected  # noqa: PLW0603 - the once-only switch of this module
    with _lock:
        if _connected:
            return
        # Strong references: the receivers are module functions, and the
        # dispatch_uid makes a second connect a no-op even across reloads.
        worker_process_init.connect(
            _on_worker_process_init, weak=False, dispatch_uid="microrequests.process_init"
        )
        worker_process_shutdown.connect(
            _on_worker_process_shutdown, weak=False, dispatch_uid="microrequests.process_shutdown"
        )
        _connected = True
