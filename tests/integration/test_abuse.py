"""Rate limits, connection limits and origin policy, each with its precise refusal."""

from __future__ import annotations

import time

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import ServerFactory
from tests.support.ws import close_code, open_socket, recv_json, send_json


def stored_count(url: str) -> int:
    with httpx.Client(base_url=url, timeout=5) as client:
        return len(client.get("/api/messages", params={"limit": 200}).json()["messages"])


def test_socket_flood_gets_rate_limited_then_closed(make_server: ServerFactory) -> None:
    server = make_server(socket_rate_per_second=0.5, socket_rate_burst=3, rate_limit_strikes=5)
    with open_socket(server.ws_url) as flooder, open_socket(server.ws_url) as bystander:
        for n in range(3):
            send_json(flooder, {"body": f"ok {n}"})
            assert recv_json(flooder)["body"] == f"ok {n}"
            assert recv_json(bystander)["body"] == f"ok {n}"
        for n in range(4):
            send_json(flooder, {"body": f"too fast {n}", "client_id": f"f{n}"})
            error = recv_json(flooder)
            assert error["error"] == "rate_limited"
            assert 0 < error["retry_after"] <= 2
        send_json(flooder, {"body": "the last straw"})
        assert close_code(flooder) == 1008
        # The bystander is unaffected and can still talk.
        send_json(bystander, {"body": "still fine"})
        assert recv_json(bystander)["body"] == "still fine"
    assert stored_count(server.url) == 4


def test_rate_limit_refills(make_server: ServerFactory) -> None:
    server = make_server(socket_rate_per_second=2, socket_rate_burst=1)
    with open_socket(server.ws_url) as sender:
        send_json(sender, {"body": "one"})
        assert recv_json(sender)["body"] == "one"
        send_json(sender, {"body": "two"})
        error = recv_json(sender)
        assert error["error"] == "rate_limited"
        time.sleep(error["retry_after"] + 0.05)
        send_json(sender, {"body": "two"})
        assert recv_json(sender)["body"] == "two"


def test_api_posts_are_rate_limited_per_address(make_server: ServerFactory) -> None:
    server = make_server(post_rate_per_second=0.2, post_rate_burst=2)
    with httpx.Client(base_url=server.url, timeout=5) as client:
        statuses = [
            client.post("/api/messages", json={"body": f"p{n}"}).status_code for n in range(2)
        ]
        assert statuses == [201, 201]
        refused = client.post("/api/messages", json={"body": "p3"})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"] == "rate_limited"
        # Reading is not limited.
        assert client.get("/api/messages").status_code == 200
    assert stored_count(server.url) == 2


def test_connections_per_address_are_capped(make_server: ServerFactory) -> None:
    server = make_server(max_connections_per_address=2)
    with open_socket(server.ws_url) as first, open_socket(server.ws_url):
        with pytest.raises(InvalidStatus) as refused:
            open_socket(server.ws_url)
        assert refused.value.response.status_code == 429
        assert b"too_many_connections" in refused.value.response.body
        first.close()
        deadline = time.monotonic() + 5
        while True:  # the slot frees once the server has seen the close
            try:
                with open_socket(server.ws_url) as again:
                    send_json(again, {"body": "room again"})
                    assert recv_json(again)["body"] == "room again"
                break
            except InvalidStatus:
                assert time.monotonic() < deadline, "the slot was never released"
                time.sleep(0.05)


def test_total_connections_are_capped(make_server: ServerFactory) -> None:
    server = make_server(max_connections=1)
    with open_socket(server.ws_url):
        with pytest.raises(InvalidStatus) as refused:
            open_socket(server.ws_url)
        assert refused.value.response.status_code == 503
        assert b"server_full" in refused.value.response.body


def test_missing_origin_can_be_required(make_server: ServerFactory) -> None:
    server = make_server(require_origin=True)
    with pytest.raises(InvalidStatus) as refused:
        open_socket(server.ws_url)
    assert refused.value.response.status_code == 403
    with open_socket(server.ws_url, origin=server.origin) as connection:
        send_json(connection, {"body": "with origin"})
        assert recv_json(connection)["body"] == "with origin"


def test_rate_limited_frames_name_the_refused_client_id(make_server: ServerFactory) -> None:
    server = make_server(socket_rate_per_second=0.1, socket_rate_burst=1)
    with open_socket(server.ws_url) as sender:
        send_json(sender, {"body": "first", "client_id": "a"})
        assert recv_json(sender)["client_id"] == "a"
        send_json(sender, {"body": "second", "client_id": "b"})
        refused = recv_json(sender)
        assert (refused["error"], refused["client_id"]) == ("rate_limited", "b")
        sender.send("not json")
        assert recv_json(sender)["client_id"] is None
