"""A raw TCP server on loopback whose connections misbehave on cue.

In the manner of urllib3's ``test/with_dummyserver/test_socketlevel.py``: each
accepted connection follows a script, chosen by its accept order, so a test
can stage the keep-alive race exactly: answer once, then read the next
request and hang up (or reset) without answering.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

# Scripts for one connection:
ANSWER = "answer"  # answer every request, keep-alive
HANGUP_SECOND = "hangup-second"  # answer once; read the next request, close (FIN) unanswered
RESET_SECOND = "reset-second"  # answer once; read the next request, reset (RST) unanswered
PARTIAL_SECOND = "partial-second"  # answer once; to the next, a status line, then reset
HANGUP_FIRST = "hangup-first"  # read the first request, close unanswered
STALL = "stall"  # read requests, never answer
SLOW = "slow"  # answer each request after SLOW_SECONDS

SLOW_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class Seen:
    connection: int
    method: str
    path: str


def _read_request(reader: BinaryIO) -> tuple[str, str] | None:
    line = reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    length, chunked = 0, False
    while True:
        header = reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        if name.strip().lower() == "transfer-encoding":
            chunked = "chunked" in value.lower()
    if length:
        reader.read(length)
    while chunked:
        size = int(reader.readline().split(b";")[0], 16)
        reader.read(size + 2)  # the chunk and its CRLF
        chunked = size > 0
    return method, path


class ScriptedServer:
    """Connection *n* follows ``scripts[n]`` (the last one repeats)."""

    def __init__(self, *scripts: str) -> None:
        self.scripts = scripts or (ANSWER,)
        self.seen: list[Seen] = []
        self.accepted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []

    def requests(self, method: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if method is None or s.method == method]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                index = self.accepted
                self.accepted += 1
                self._socks.append(sock)
            script = self.scripts[min(index, len(self.scripts) - 1)]
            thread = threading.Thread(target=self._run, args=(sock, index, script), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket, index: int, script: str) -> None:
        with contextlib.suppress(OSError, ValueError), sock, sock.makefile("rb") as reader:
            answered = 0
            while not self._stop.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                with self._lock:
                    self.seen.append(Seen(index, *request))
                if script == STALL or (script == HANGUP_FIRST and answered == 0):
                    if script == STALL:
                        self._stop.wait(30)
                    return
                if answered == 1 and script in (HANGUP_SECOND, RESET_SECOND, PARTIAL_SECOND):
                    if script == PARTIAL_SECOND:
                        sock.sendall(b"HTTP/1.1 200 OK\r\n")
                        time.sleep(0.05)
                    if script != HANGUP_SECOND:  # SO_LINGER 0: close sends RST
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    return
                if script == SLOW:
                    self._stop.wait(SLOW_SECONDS)
                sock.sendall(OK)
                answered += 1

    def __enter__(self) -> ScriptedServer:
        thread = threading.Thread(target=self._serve, daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)


@contextlib.contextmanager
def scripted(*scripts: str) -> Iterator[ScriptedServer]:
    with ScriptedServer(*scripts) as server:
        yield server
