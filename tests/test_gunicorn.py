"""Real gunicorn, --preload, 3 workers: no backend connection is ever shared."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from microrequests._loopback import LoopbackServer
from microrequests.contrib import gunicorn as hooks

from .helpers import (
    ROOT,
    assert_hook_left_nothing_pooled,
    assert_no_connection_shared,
    preforking_server,
    run_threads,
    stop_gracefully,
)


@pytest.mark.parametrize(
    "worker_args",
    [["-k", "sync"], ["-k", "gthread", "--threads", "4"]],
    ids=["sync", "gthread"],
)
def test_preloaded_workers_never_share_a_backend_connection(
    server: LoopbackServer, tmp_path: Path, worker_args: list[str]
) -> None:
    # A listening socket handed to gunicorn (fd://): port 0 with no race, and
    # requests queue in its backlog until a worker accepts them.
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    env = {
        **os.environ,
        "MICROREQUESTS_TEST_BACKEND": server.url,
        "MICROREQUESTS_TEST_MARKERS": str(tmp_path),
    }
    log = tmp_path / "gunicorn.log"
    command = [
        *(sys.executable, "-m", "gunicorn", "--preload", "-w", "3", *worker_args),
        *("-b", f"fd://{listener.fileno()}", "-c", str(ROOT / "tests/apps/gunicorn_conf.py")),
        *("--graceful-timeout", "10", "--log-level", "warning", "tests.apps.gunicorn_app:app"),
    ]
    with preforking_server(command, env, log, pass_fds=(listener.fileno(),)) as proc:
        listener.close()

        def client(_: int) -> list[int]:
            return [int(requests.get(url, timeout=20).text) for _ in range(10)]

        worker_pids = [pid for batch in run_threads(6, client) for pid in batch]
        stop_gracefully(proc, log)

    assert len(worker_pids) == 60
    workers = set(worker_pids)
    stats = server.stats()
    # One import-time call in the master, then two per request in the workers.
    assert_no_connection_shared(stats, proc.pid, workers, 1 + 60 * 2, log)
    # worker_exit ran in every worker that served, and left nothing pooled.
    assert_hook_left_nothing_pooled(tmp_path, "exit", workers, log)
    print(
        f"gunicorn {worker_args[1]}: workers={len(workers)} pids_seen={len(workers) + 1} "
        f"connections_opened={stats.opened} shared={stats.shared_across_pids}"
    )


def test_chain_runs_every_hook_and_reraises_the_first_error() -> None:
    calls: list[tuple[str, Any, Any]] = []

    def failing(server: Any, worker: Any) -> None:
        calls.append(("failing", server, worker))
        raise RuntimeError("user hook failed")

    def after(server: Any, worker: Any) -> None:
        calls.append(("after", server, worker))

    with pytest.raises(RuntimeError, match="user hook failed"):
        hooks.chain(failing, after)("arbiter", "worker")
    assert calls == [("failing", "arbiter", "worker"), ("after", "arbiter", "worker")]


def test_importing_microrequests_imports_no_worker_server() -> None:
    code = (
        "import sys, microrequests, microrequests.contrib.gunicorn; "
        "assert not {'gunicorn', 'celery', 'kombu'} & set(sys.modules), sys.modules.keys()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
