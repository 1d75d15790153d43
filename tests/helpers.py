"""Helpers for tests that need real processes, threads and sockets."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from microrequests._loopback import PID_HEADER, ServerStats


def pid_header() -> dict[str, str]:
    """Identify this process to the loopback server."""
    return {PID_HEADER: str(os.getpid())}


def get(session: requests.Session, url: str) -> requests.Response:
    response = session.get(url, headers=pid_header(), timeout=10)
    response.raise_for_status()
    return response


def socket_fds() -> int:
    """Socket descriptors open in this process (client and server sides)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:  # closed between listdir and readlink
            pass
    return count


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Child:
    """A forked child running ``fn``; exit status 0 means ``fn`` returned.

    The child reports a traceback through a pipe and always leaves with
    ``os._exit`` so that no pytest machinery runs twice.
    """

    def __init__(self, pid: int, report_fd: int) -> None:
        self.pid = pid
        self._report_fd = report_fd

    def join(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        report = b""
        status = None
        while status is None:
            readable, _, _ = select.select([self._report_fd], [], [], 0.05)
            if readable:
                report += os.read(self._report_fd, 65536)
            done, raw = os.waitpid(self.pid, os.WNOHANG)
            if done:
                status = raw
            elif time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                os.close(self._report_fd)
                raise AssertionError(f"child {self.pid} hung for {timeout} s and was killed")
        while True:
            chunk = os.read(self._report_fd, 65536)
            if not chunk:
                break
            report += chunk
        os.close(self._report_fd)
        code = os.waitstatus_to_exitcode(status)
        assert code == 0, f"child {self.pid} exited {code}:\n{report.decode(errors='replace')}"


def start_child(fn: Callable[[], Any], fork: Callable[[], int] = os.fork) -> Child:
    read_fd, write_fd = os.pipe()
    pid = fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(read_fd)
            fn()
            code = 0
        except BaseException:
            os.write(write_fd, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    return Child(pid, read_fd)


def run_threads(count: int, target: Callable[[int], Any], timeout: float = 60.0) -> list[Any]:
    """Run ``target(i)`` in ``count`` threads; re-raise the first failure."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), f"thread {t.name} still running after {timeout} s"
    if errors:
        raise errors[0]
    return results


ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def preforking_server(
    command: list[str], env: dict[str, str], log_path: Path, pass_fds: tuple[int, ...] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a gunicorn or celery master in its own process group.

    On the way out, whatever happened, the whole group is killed and the
    master reaped, so no worker outlives the test. Its output is in log_path.
    """
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            pass_fds=pass_fds,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def stop_gracefully(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    """SIGTERM the master (a warm shutdown); it must exit 0 within 20 s."""
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=20)
    assert code == 0, log_path.read_text()


def assert_no_connection_shared(
    stats: ServerStats, master: int, workers: set[int], requests: int, log_path: Path
) -> None:
    """The master spoke on one connection of its own; each worker on its own."""
    assert master not in workers
    assert stats.requests == requests, log_path.read_text()
    assert stats.shared_across_pids == 0
    assert len([c for c in stats.connections if master in c.pids]) == 1
    for pid in workers:
        assert [c for c in stats.connections if pid in c.pids]


def assert_hook_left_nothing_pooled(
    markers: Path, prefix: str, pids: set[int], log_path: Path
) -> None:
    """Each worker's exit hook wrote ``<prefix>-<pid>`` with its pooled count: 0."""
    for pid in pids:
        marker = markers / f"{prefix}-{pid}"
        assert marker.exists(), log_path.read_text()
        assert marker.read_text() == "0"
