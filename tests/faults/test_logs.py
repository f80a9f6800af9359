"""Client mistakes are logged as at most one WARNING line naming the client and the error code,
never with a traceback."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from websockets.frames import Frame, Opcode

from tests.faults.conftest import ProcessFactory, log_problems
from tests.faults.rawws import HandshakeRefused, RawSocket
from tests.support.process import ChatServer

logger = logging.getLogger(__name__)

LOG_WAIT_S = 5.0


@dataclass(frozen=True)
class Mistake:
    """What the client did; returns the address the server should name."""

    commit: Callable[[ChatServer], str]
    code: str  # the error code (or its words) the warning must carry


def bad_json_frame(server: ChatServer) -> str:
    sock = RawSocket(server.port)
    sock.send_text("{not json")
    answer = read_frame(sock)
    assert answer["error"] == "invalid_json", answer
    sock.close()
    return f"127.0.0.1:{sock.local_port}"


def binary_frame(server: ChatServer) -> str:
    sock = RawSocket(server.port)
    sock.protocol.send_binary(b"\x00\x01")
    sock.flush()
    answer = read_frame(sock)
    assert answer["error"] == "binary_frame", answer
    sock.close()
    return f"127.0.0.1:{sock.local_port}"


def invalid_utf8_frame(server: ChatServer) -> str:
    sock = RawSocket(server.port)
    sock.protocol.send_frame(Frame(Opcode.TEXT, b'{"body": "\xff\xfe"}'))
    sock.flush()
    ending = sock.read_until_closed(5)
    assert ending.close_code == 1007, ending
    sock.close()
    return f"127.0.0.1:{sock.local_port}"


def foreign_origin(server: ChatServer) -> str:
    sock = RawSocket(server.port, handshake=False, origin="http://evil.example")
    port = sock.local_port
    sock.send_upgrade()
    with pytest.raises(HandshakeRefused) as refused:
        sock.finish_handshake()
    assert refused.value.status == 403
    sock.close()
    return f"127.0.0.1:{port}"


def bad_query_parameter(server: ChatServer) -> str:
    status, answer = server.request("GET", "/api/messages?limit=lots")
    assert status == 400, answer
    assert answer["error"] == "invalid_parameter", answer
    return "127.0.0.1"  # HTTP errors name the client's host


MISTAKES = {
    "bad JSON frame": Mistake(bad_json_frame, "invalid_json"),
    "binary frame": Mistake(binary_frame, "binary_frame"),
    "invalid UTF-8 text frame": Mistake(invalid_utf8_frame, "invalid UTF-8"),
    "foreign Origin": Mistake(foreign_origin, "origin 'http://evil.example'"),
    "bad query parameter": Mistake(bad_query_parameter, "invalid_parameter"),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_client_mistake_is_one_warning_line_without_traceback(
    make_process: ProcessFactory, record_property: pytest.RecordProperty, name: str
) -> None:
    server = make_process("mistakes")
    mistake = MISTAKES[name]
    before = len(server.log_text())
    address = mistake.commit(server)
    # Anything the mistake logs is written before the server answers a later request.
    barrier(server, before, name.replace(" ", "-"))
    added = server.log_text()[before:].splitlines()

    warnings = [line for line in added if " WARNING " in line and address in line]
    assert len(warnings) == 1, added
    assert mistake.code in warnings[0], warnings
    assert not log_problems("\n".join(added)), added
    assert not [line for line in added if line.startswith(("  File ", "Traceback"))], added
    record_property("warning_line", warnings[0])
    logger.info("%s: %s", name, warnings[0].split(" ", 2)[2])


def barrier(server: ChatServer, offset: int, tag: str) -> None:
    """Make a request and wait until its access-log line is written after `offset`."""
    path = f"/healthz?after={tag}"
    assert server.request("GET", path)[0] == 200
    line = f'"GET {path} HTTP/1.1" 200'
    deadline = time.monotonic() + LOG_WAIT_S
    while line not in server.log_text()[offset:]:
        assert time.monotonic() < deadline, f"{line!r} never reached the log"
        time.sleep(0.02)  # polling the log file


def read_frame(sock: RawSocket) -> dict[str, object]:
    """The next text frame the server sends, as JSON."""
    deadline = time.monotonic() + 5
    while not sock.texts:
        assert time.monotonic() < deadline, "no frame within 5 s"
        sock.read_some()
    payload = json.loads(sock.texts.pop(0))
    assert isinstance(payload, dict)
    return payload
