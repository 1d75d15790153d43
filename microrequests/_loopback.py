"""A small HTTP/1.1 keep-alive server on loopback that counts connections.

It backs ``python -m microrequests demo`` and the test suite: pooling is only
proven from the server's side, by counting the TCP connections that carried
requests and which client process spoke over each one. A client identifies
its process with the ``X-Client-Pid`` header.

Routes: ``/status/<code>`` answers with that status; anything else answers
``200 ok``. Request bodies are read (by Content-Length) and counted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import socket
import socketserver
import ssl
import sys
import threading
import time
from types import TracebackType
from typing import Any

PID_HEADER = "X-Client-Pid"


@dataclasses.dataclass
class ConnectionRecord:
    """What the server saw on one accepted TCP connection."""

    index: int
    peer: tuple[str, int]
    requests: int = 0
    pids: set[int] = dataclasses.field(default_factory=set)
    open: bool = True


@dataclasses.dataclass(frozen=True)
class ServerStats:
    """A consistent snapshot of :class:`LoopbackServer`'s counters."""

    connections: tuple[ConnectionRecord, ...]
    requests: int
    methods: dict[str, int]
    #: Requests per "METHOD /path": how often each one reached the server.
    paths: dict[str, int]

    @property
    def opened(self) -> int:
        return len(self.connections)

    @property
    def open_now(self) -> int:
        return sum(1 for c in self.connections if c.open)

    @property
    def shared_across_pids(self) -> int:
        """Connections that carried requests from more than one process."""
        return sum(1 for c in self.connections if len(c.pids) > 1)

    def pids_of(self, index: int) -> set[int]:
        return set(self.connections[index].pids)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second waits
    # for the client's delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        tls = self.server.owner.tls
        if tls is not None:
            # Handshake here, in the connection's thread, not in the accept loop.
            sock = tls.wrap_socket(self.request, server_side=True, do_handshake_on_connect=False)
            self.request = sock
            try:
                sock.do_handshake()
            except OSError:
                sock.close()  # finish() will not run when setup() fails
                raise
        super().setup()
        self.record = self.server.owner._accepted(self.request, self.client_address)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._closed(self.record, self.request)
            if self.server.owner.tls is not None:
                # socketserver closes the socket it accepted, not our wrapper.
                self.request.close()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        pid = self.headers.get(PID_HEADER)
        self.server.owner._saw_request(self.record, self.command, self.path, pid)
        status = 200
        if self.path.startswith("/status/"):
            status = int(self.path.rsplit("/", 1)[1])
        body = b"" if self.command == "HEAD" else b"ok"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the counters are the log


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, owner: LoopbackServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets or vanishes mid-request, or refuses our test
        # certificate, is routine for a test server (fault injection, killed
        # workers, TLS tests); anything else is printed.
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """Threaded HTTP/1.1 server on ``127.0.0.1``, on a free port.

    Use as a context manager; ``url`` is its base URL and ``stats()`` a
    snapshot. Leaving the context closes the listener and every connection
    still open, so no socket outlives it. Given a server-side ``tls``
    context it speaks HTTPS.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self._lock = threading.Lock()
        self._connections: list[ConnectionRecord] = []
        self._sockets: dict[int, socket.socket] = {}
        self._requests = 0
        self._methods: dict[str, int] = {}
        self._paths: dict[str, int] = {}
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.host: str = str(host)
        self.port: int = int(port)
        self.url = f"{'https' if tls else 'http'}://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-server-{self.port}",
            daemon=True,
        )

    def start(self) -> LoopbackServer:
        # The listener is bound and listening since __init__ (a failure there
        # raises), so connections queue in the backlog until serve_forever()
        # picks them up: no readiness race to wait out.
        self._thread.start()
        if not self._thread.is_alive():  # pragma: no cover
            raise RuntimeError(f"loopback server on {self.url} did not start")
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            socks = list(self._sockets.values())
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5.0)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stats(self) -> ServerStats:
        with self._lock:
            conns = tuple(dataclasses.replace(c, pids=set(c.pids)) for c in self._connections)
            return ServerStats(conns, self._requests, dict(self._methods), dict(self._paths))

    def wait_until(self, predicate: Any, timeout: float = 5.0) -> ServerStats:
        """Poll ``stats()`` until ``predicate(stats)`` holds; return the last one."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if predicate(stats) or time.monotonic() > deadline:
                return stats
            time.sleep(0.01)

    # -- called from handler threads --------------------------------------
    def _accepted(self, sock: socket.socket, peer: Any) -> ConnectionRecord:
        with self._lock:
            record = ConnectionRecord(index=len(self._connections), peer=tuple(peer[:2]))
            self._connections.append(record)
            self._sockets[id(record)] = sock
            return record

    def _closed(self, record: ConnectionRecord, sock: socket.socket) -> None:
        with self._lock:
            record.open = False
            self._sockets.pop(id(record), None)

    def _saw_request(
        self, record: ConnectionRecord, method: str, path: str, pid: str | None
    ) -> None:
        with self._lock:
            record.requests += 1
            if pid is not None:
                record.pids.add(int(pid))
            self._requests += 1
            self._methods[method] = self._methods.get(method, 0) + 1
            key = f"{method} {path}"
            self._paths[key] = self._paths.get(key, 0) + 1
