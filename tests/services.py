"""Broker services this machine kind starts before each session.

With MICROREQUESTS_REQUIRE_SERVICES=1 (set by .ci/run) a missing service
fails the test that needs it; elsewhere it skips, with the reason.
"""

from __future__ import annotations

import os
import socket

import pytest

REDIS = ("127.0.0.1", 6379)
RABBITMQ = ("127.0.0.1", 5672)


def _answers(address: tuple[str, int], hello: bytes, expect: bytes) -> bool:
    try:
        with socket.create_connection(address, timeout=2.0) as sock:
            sock.sendall(hello)
            return sock.recv(64).startswith(expect)
    except OSError:
        return False


def require(name: str, address: tuple[str, int]) -> None:
    if name == "Redis":
        ok = _answers(address, b"PING\r\n", b"+PONG")
    else:  # an AMQP 0-9-1 broker answers the protocol header with Connection.Start
        ok = _answers(address, b"AMQP\x00\x00\x09\x01", b"\x01\x00\x00")
    if ok:
        return
    message = f"{name} is not answering on {address[0]}:{address[1]}"
    if os.environ.get("MICROREQUESTS_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and MICROREQUESTS_REQUIRE_SERVICES=1")
    pytest.skip(message)
