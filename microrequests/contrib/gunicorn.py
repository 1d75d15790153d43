"""gunicorn server hooks. In your gunicorn config file (``-c gunicorn.conf.py``)::

    from microrequests.contrib.gunicorn import post_fork, worker_exit

If the config already defines one of these hooks, chain them::

    from microrequests.contrib import gunicorn as microrequests_hooks

    def my_post_fork(server, worker):
        ...

    post_fork = microrequests_hooks.chain(microrequests_hooks.post_fork, my_post_fork)

This module does not import gunicorn: the hooks only receive its objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._manager import close_all
from .._session import drop_inherited_connections_everywhere

__all__ = ["chain", "post_fork", "worker_exit"]

Hook = Callable[..., Any]


def post_fork(server: Any, worker: Any) -> None:
    """Start the worker with no connection inherited from the master.

    The fork handler already did this; this hook is belt and braces for a
    master that forked some other way. It does no I/O on the inherited
    sockets, so the master's connections are unharmed.
    """
    drop_inherited_connections_everywhere()


def worker_exit(server: Any, worker: Any) -> None:
    """Close every pooled connection of the exiting worker (``close_all()``)."""
    close_all()


def chain(*hooks: Hook) -> Hook:
    """One ``(server, worker)`` hook that calls ``hooks`` in order.

    For the two-argument hooks (``post_fork``, ``worker_exit``, ...): gunicorn
    checks a hook's arity, so the result takes exactly ``server, worker``.
    Every hook runs even if an earlier one raised; the first error is then
    re-raised, so a failing user hook cannot skip microrequests' clean-up.
    """

    def chained(server: Any, worker: Any) -> None:
        first_error: BaseException | None = None
        for hook in hooks:
            try:
                hook(server, worker)
            except BaseException as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    return chained
