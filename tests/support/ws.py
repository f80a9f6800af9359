"""Synchronous WebSocket clients with bounded waits, for protocol tests against a live server."""

from __future__ import annotations

import json
import socket
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

RECV_TIMEOUT_S = 5.0


def open_socket(
    url: str,
    *,
    origin: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> ClientConnection:
    """Connect with an Origin and any other handshake headers (a Cookie, an Authorization)."""
    sent = {**(headers or {}), **({"Origin": origin} if origin else {})}
    return connect(url, additional_headers=sent or None, open_timeout=5, close_timeout=2, **kwargs)


def recv_json(connection: ClientConnection, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any]:
    frame = connection.recv(timeout=timeout)
    payload = json.loads(frame)
    assert isinstance(payload, dict)
    return payload


def send_json(connection: ClientConnection, payload: Any) -> None:
    connection.send(json.dumps(payload))


def expect_silence(connection: ClientConnection, seconds: float = 0.3) -> None:
    """Assert that nothing arrives within `seconds`."""
    try:
        frame = connection.recv(timeout=seconds)
    except TimeoutError:
        return
    raise AssertionError(f"expected no frame, got {frame!r}")


def close_code(connection: ClientConnection, timeout: float = RECV_TIMEOUT_S) -> int | None:
    """Read until the server closes; return its close code."""
    try:
        while True:
            connection.recv(timeout=timeout)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def tiny_receive_buffer_socket(port: int) -> socket.socket:
    """A connected TCP socket whose receive buffer is tiny, so a client that stops reading
    makes the server's buffers fill after a few frames rather than after megabytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock
