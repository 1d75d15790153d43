"""A loopback TCP proxy that injects faults, at random from a fixed seed.

Connection *n* draws its fault from ``random.Random(seed, n)``: pass through,
or reset (RST), drop (FIN), stall or drip, either at once or after some bytes
of responses have gone back to the client, so that faults land on new
connections, between responses on reused ones, and in the middle of a
response.
"""

from __future__ import annotations

import collections
import contextlib
import random
import select
import socket
import struct
import threading
import time

FAULTS = ("pass", "reset", "drop", "stall", "drip")
WEIGHTS = (20, 25, 25, 8, 22)
# Bytes of responses relayed before the fault: at once (a new connection
# fails), or after some responses (a reused one fails, between or in the
# middle of responses; a response here is about 150 bytes).
AFTER = (0, 150, 400, 1500, 3000)
DRIP_DELAY = 0.004  # seconds per byte: a ~150-byte response takes ~0.6 s


class FaultProxy:
    def __init__(self, upstream: tuple[str, int], seed: int) -> None:
        self.upstream = upstream
        self.seed = seed
        self.faults: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        self._accepted = 0

    def __enter__(self) -> FaultProxy:
        self._spawn(self._accept_loop)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(10)
        self._listener.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            index = self._accepted
            self._accepted += 1
            self._spawn(self._relay, client, index)

    def _relay(self, client: socket.socket, index: int) -> None:
        rng = random.Random(self.seed * 1_000_003 + index)
        fault = rng.choices(FAULTS, WEIGHTS)[0]
        after = rng.choice(AFTER) if fault != "pass" else 0
        with self._lock:
            self.faults[f"{fault}@{after}" if fault != "pass" else "pass"] += 1
        with contextlib.ExitStack() as stack:
            stack.enter_context(client)
            if after == 0 and self._fault(fault, client):
                return
            upstream = stack.enter_context(socket.create_connection(self.upstream, timeout=5))
            relayed = 0
            while not self._stop.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.1)
                for sock in readable:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    if sock is client:
                        upstream.sendall(data)
                        continue
                    if fault != "pass" and relayed + len(data) > after:
                        self._fault(fault, client, data)
                        if fault != "drip":
                            return
                        continue
                    client.sendall(data)
                    relayed += len(data)

    def _fault(self, fault: str, client: socket.socket, data: bytes = b"") -> bool:
        """Apply ``fault``; True when the connection is finished with."""
        if fault == "reset":
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif fault == "stall":
            self._stop.wait()
        elif fault == "drip":
            for byte in data:
                client.sendall(bytes((byte,)))
                time.sleep(DRIP_DELAY)
            return False
        return fault != "pass"
