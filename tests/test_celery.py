"""Real celery prefork workers on real brokers: no connection is ever shared."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

import microrequests
from microrequests._loopback import LoopbackServer
from microrequests.contrib.celery import connect_signals

from .helpers import (
    assert_hook_left_nothing_pooled,
    assert_no_connection_shared,
    get,
    preforking_server,
    stop_gracefully,
)
from .services import RABBITMQ, REDIS, require

REDIS_URL = f"redis://{REDIS[0]}:{REDIS[1]}/0"
BROKERS = {"redis": REDIS_URL, "rabbitmq": f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}//"}


@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_prefork_children_never_share_a_backend_connection(
    server: LoopbackServer, tmp_path: Path, broker: str
) -> None:
    require("Redis", REDIS)  # the result backend, whichever the broker
    if broker == "rabbitmq":
        require("RabbitMQ", RABBITMQ)
    queue = f"microrequests-test-{uuid.uuid4().hex}"  # xdist-safe: a queue per test
    env = {
        **os.environ,
        "MICROREQUESTS_TEST_BACKEND": server.url,
        "MICROREQUESTS_TEST_MARKERS": str(tmp_path),
        "MICROREQUESTS_TEST_BROKER": BROKERS[broker],
        "MICROREQUESTS_TEST_RESULTS": REDIS_URL,
        "MICROREQUESTS_TEST_QUEUE": queue,
    }
    log = tmp_path / "celery.log"
    command = [
        *(sys.executable, "-m", "celery", "-A", "tests.apps.celery_tasks", "worker"),
        *("--pool=prefork", "-c", "3", "-Q", queue, "-n", f"{queue}@localhost"),
        *("--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "warning"),
    ]
    client = Celery("microrequests_test_client", broker=BROKERS[broker], backend=REDIS_URL)
    try:
        with preforking_server(command, env, log) as proc:
            with client.connection_for_write() as connection:
                results = [
                    client.send_task(
                        "microrequests_test.call_backend", queue=queue, connection=connection
                    )
                    for _ in range(45)
                ]
            pids = [result.get(timeout=30) for result in results]
            stop_gracefully(proc, log)  # warm shutdown: children exit normally
    finally:
        client.close()

    assert len(pids) == 45
    children = set(pids)
    stats = server.stats()
    # One import-time call in the main process, then two per task in children.
    assert_no_connection_shared(stats, proc.pid, children, 1 + 45 * 2, log)
    # worker_process_shutdown ran close_all() in every child: nothing pooled.
    assert_hook_left_nothing_pooled(tmp_path, "shutdown", children, log)
    print(
        f"celery prefork on {broker}: children={len(children)} pids_seen={len(children) + 1} "
        f"connections_opened={stats.opened} shared={stats.shared_across_pids}"
    )


def _receivers(signal_: object, uid: str) -> int:
    receivers = getattr(signal_, "receivers", [])
    return sum(1 for key, _ in receivers if key[0] == uid)


def test_connect_signals_is_idempotent() -> None:
    connect_signals()
    connect_signals()
    assert _receivers(worker_process_init, "microrequests.process_init") == 1
    assert _receivers(worker_process_shutdown, "microrequests.process_shutdown") == 1


def test_worker_process_shutdown_closes_the_pools(server: LoopbackServer) -> None:
    connect_signals()
    get(microrequests.init(), server.url)
    get(microrequests.init(scope="thread"), server.url)
    direct = microrequests.Session()  # kept referenced: only the signal may close it
    get(direct, server.url)
    assert server.wait_until(lambda s: s.open_now == 3).open_now == 3
    worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
    assert server.wait_until(lambda s: s.open_now == 0).open_now == 0


def test_worker_process_init_drops_pooled_connections(server: LoopbackServer) -> None:
    connect_signals()
    session = microrequests.init()
    get(session, server.url)
    worker_process_init.send(sender="worker@host")
    # No fork here, so dropping our descriptor is the last close: the server
    # sees the connection end, and the next call opens a new one.
    assert server.wait_until(lambda s: s.open_now == 0).open_now == 0
    get(session, server.url)
    assert server.stats().opened == 2


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_missing_service_fails_when_services_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROREQUESTS_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="MICROREQUESTS_REQUIRE_SERVICES=1"):
        require("Redis", ("127.0.0.1", _closed_port()))


def test_missing_service_skips_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MICROREQUESTS_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="is not answering"):
        require("RabbitMQ", ("127.0.0.1", _closed_port()))
