"""The /chatsocket protocol against a real uvicorn server and real sockets."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import ServerFactory
from tests.support.live import LiveServer
from tests.support.ws import (
    close_code,
    expect_silence,
    open_socket,
    recv_json,
    send_json,
    tiny_receive_buffer_socket,
)


def stored_bodies(server: LiveServer) -> list[str]:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        return [
            m["body"] for m in client.get("/api/messages", params={"limit": 200}).json()["messages"]
        ]


def test_tornado_client_round_trip(server: LiveServer) -> None:
    with open_socket(server.ws_url) as alice, open_socket(server.ws_url) as bob:
        send_json(alice, {"body": "hi <b>bob</b> http://example.com", "_xsrf": "2|x|y|z"})
        for connection in (alice, bob):
            frame = recv_json(connection)
            assert {"id", "body", "html", "author", "created_at"} <= set(frame)
            assert frame["body"] == "hi <b>bob</b> http://example.com"
            assert frame["html"].startswith(f'<div class="message" id="m{frame["id"]}"')
            assert "&lt;b&gt;bob&lt;/b&gt;" in frame["html"]
            assert '<a href="http://example.com"' in frame["html"]
    assert stored_bodies(server) == ["hi <b>bob</b> http://example.com"]


def test_messages_arrive_in_id_order_for_everyone(server: LiveServer) -> None:
    with open_socket(server.ws_url) as alice, open_socket(server.ws_url) as bob:
        for n in range(20):
            send_json(alice if n % 2 else bob, {"body": f"n{n}", "author": "x"})
        ids_alice = [recv_json(alice)["id"] for _ in range(20)]
        ids_bob = [recv_json(bob)["id"] for _ in range(20)]
    assert ids_alice == ids_bob == sorted(ids_alice)
    assert len(set(ids_alice)) == 20


def test_a_burst_from_one_socket_is_stored_in_the_order_sent(server: LiveServer) -> None:
    # The server queues a socket's messages without waiting for each commit; order must hold.
    count = 150
    with open_socket(server.ws_url) as sender:
        for n in range(count):
            send_json(sender, {"body": f"b{n}", "client_id": f"burst-{n}"})
        echoes = [recv_json(sender) for _ in range(count)]
    assert [echo["body"] for echo in echoes] == [f"b{n}" for n in range(count)]
    ids = [echo["id"] for echo in echoes]
    assert ids == sorted(ids) and len(set(ids)) == count
    assert stored_bodies(server)[-count:] == [f"b{n}" for n in range(count)]


BAD_FRAMES = [
    ("not json", "invalid_json"),
    ("[1]", "invalid_frame"),
    ('"text"', "invalid_frame"),
    ("{}", "missing_body"),
    ('{"body": 1}', "invalid_body"),
    ('{"body": null}', "invalid_body"),
    ('{"body": ""}', "empty_body"),
    ('{"body": " \\n "}', "empty_body"),
    ('{"body": "' + "x" * 2001 + '"}', "body_too_long"),
    ('{"body": "hi", "author": {}}', "invalid_author"),
    ('{"body": "hi", "client_id": ""}', "invalid_client_id"),
    (json.dumps({"body": "x" * 20_000}), "frame_too_large"),
]


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES)
def test_bad_frames_get_an_error_and_the_connection_stays_open(
    server: LiveServer, frame: str, code: str
) -> None:
    with open_socket(server.ws_url) as sender, open_socket(server.ws_url) as bystander:
        sender.send(frame)
        error = recv_json(sender)
        assert error["type"] == "error"
        assert error["error"] == code
        assert isinstance(error["detail"], str) and error["detail"]
        expect_silence(bystander)
        send_json(sender, {"body": "still here"})
        assert recv_json(sender)["body"] == "still here"
        assert recv_json(bystander)["body"] == "still here"
    assert stored_bodies(server) == ["still here"]


def test_binary_frames_get_an_error(server: LiveServer) -> None:
    with open_socket(server.ws_url) as connection:
        connection.send(json.dumps({"body": "as bytes"}).encode())
        assert recv_json(connection)["error"] == "binary_frame"
        send_json(connection, {"body": "as text"})
        assert recv_json(connection)["body"] == "as text"
    assert stored_bodies(server) == ["as text"]


def test_error_frames_name_the_client_id(server: LiveServer) -> None:
    with open_socket(server.ws_url) as connection:
        send_json(connection, {"body": "", "client_id": "k-1"})
        assert recv_json(connection) | {"detail": ""} == {
            "type": "error",
            "error": "empty_body",
            "detail": "",
            "client_id": "k-1",
        }


def test_frames_over_the_protocol_limit_close_with_1009(server: LiveServer) -> None:
    with open_socket(server.ws_url, max_size=None) as connection:
        connection.send("x" * (server.settings.max_protocol_frame_bytes + 1))
        assert close_code(connection) == 1009
    with open_socket(server.ws_url) as connection:  # the server is fine
        send_json(connection, {"body": "after"})
        assert recv_json(connection)["body"] == "after"


def test_invalid_utf8_closes_with_1007(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    with open_socket(server.ws_url) as connection:
        connection.send(b'{"body": "\xff\xfe"}', text=True)
        assert close_code(connection) == 1007
    assert stored_bodies(server) == []
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a client mistake"


def test_resend_with_client_id_is_answered_to_the_sender_only(server: LiveServer) -> None:
    with open_socket(server.ws_url) as sender, open_socket(server.ws_url) as bystander:
        send_json(sender, {"body": "exactly once", "client_id": "c-42"})
        first = recv_json(sender)
        assert recv_json(bystander) == first
        send_json(sender, {"body": "exactly once", "client_id": "c-42"})
        # The same message object; without a seq, as a resend is no new change in the log.
        assert recv_json(sender) == {key: value for key, value in first.items() if key != "seq"}
        expect_silence(bystander)
    assert stored_bodies(server) == ["exactly once"]


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "file://",
        "http://127.0.0.1:1",
        "https://127.0.0.1:{port}",
        "http://127.0.0.1:{port}.evil.example",
    ],
)
def test_foreign_origins_get_403(server: LiveServer, origin: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_socket(server.ws_url, origin=origin.format(port=server.port))
    assert refused.value.response.status_code == 403


def test_same_origin_and_allow_listed_origins_connect(make_server: ServerFactory) -> None:
    server = make_server(allowed_origins=frozenset({"https://chat.example"}))
    for origin in (server.origin, "https://chat.example", None):
        with open_socket(server.ws_url, origin=origin) as connection:
            send_json(connection, {"body": f"from {origin}"})
            assert recv_json(connection)["body"] == f"from {origin}"


def test_permessage_deflate_is_negotiated_when_offered(server: LiveServer) -> None:
    with open_socket(server.ws_url, compression="deflate") as connection:
        extensions = connection.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in extensions
        send_json(connection, {"body": "compressed " * 50})
        assert recv_json(connection)["body"] == "compressed " * 50
    with open_socket(server.ws_url, compression=None) as connection:
        assert "Sec-WebSocket-Extensions" not in connection.response.headers


def test_slow_consumer_is_disconnected_and_nobody_waits(make_server: ServerFactory) -> None:
    # Large frames fill the kernel's autotuned socket buffers (megabytes on loopback) quickly.
    server = make_server(send_queue_size=8, max_message_chars=16_000, max_frame_bytes=64 * 1024)
    sock = tiny_receive_buffer_socket(server.port)
    body = "y" * 15_000
    # The slow client completes the handshake, then reads nothing until the end.
    with (
        open_socket(server.ws_url, sock=sock, compression=None, max_queue=1) as slow,
        open_socket(server.ws_url) as sender,
        open_socket(server.ws_url) as bystander,
    ):
        # Each receive is bounded (5 s): had the slow reader stalled the fan-out, these fail.
        for n in range(300):
            send_json(sender, {"body": f"{n} {body}"})
            assert recv_json(sender)["body"].startswith(f"{n} ")
            assert recv_json(bystander)["body"].startswith(f"{n} ")
        hub = server.app_state["hub"]
        deadline = time.monotonic() + 5
        while len(hub) != 2 and time.monotonic() < deadline:  # type: ignore[arg-type]
            time.sleep(0.05)
        assert len(hub) == 2, "the slow consumer is still subscribed"  # type: ignore[arg-type]
        # When the slow client finally reads, it finds the close frame after what was buffered.
        assert close_code(slow, timeout=10) == 4008
