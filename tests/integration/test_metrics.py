"""GET /metrics against a real uvicorn: off by default, a bearer token when set, and every
metric moving by exactly what real sockets and requests did."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import ServerFactory
from tests.support.live import LiveServer
from tests.support.metrics import Scrape, scrape
from tests.support.ws import (
    close_code,
    open_socket,
    recv_json,
    send_json,
    tiny_receive_buffer_socket,
)

TOKEN = "s3cret-Token_42"
WAIT_S = 5.0


def wait_for_scrape(server: LiveServer, check: str, name: str, expected: float) -> Scrape:
    """Scrape until `name` reads `expected` (the server counts a close after the client's)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        current = scrape(server.url)
        if current.value(name) == expected or time.monotonic() > deadline:
            assert current.value(name) == expected, f"{check}: {name} = {current.value(name)}"
            return current
        time.sleep(0.05)


def test_metrics_are_off_by_default(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as http:
        assert http.get("/metrics").status_code == 404
        assert http.post("/metrics").status_code == 405  # as for any route, as documented
        # Nothing else changes: the API works as always.
        assert http.post("/api/messages", json={"body": "hi"}).status_code == 201


def test_a_scrape_needs_the_token_when_one_is_set(make_server: ServerFactory) -> None:
    server = make_server(metrics=True, metrics_token=TOKEN)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN},
        ):
            refused = http.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json()["error"] == "unauthorized"
            assert TOKEN not in refused.text
        for scheme in ("Bearer", "bearer"):
            answer = http.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain; version=")
    counted = scrape(server.url, token=TOKEN)
    # The refused scrapes are counted: a scraper with the wrong token shows up.
    assert counted.value("chat_http_requests_total", route="/metrics", method="GET", status="401")
    assert counted.families["chat_open_sockets"] == "gauge"


def test_a_missing_multiprocess_directory_refuses_the_start(
    make_server: ServerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(RuntimeError, match="uvicorn did not start"):
        make_server(metrics=True, prometheus_multiproc_dir=str(missing))
    # One line that says what to fix, not a traceback (chat.startup).
    assert f"chat: PROMETHEUS_MULTIPROC_DIR '{missing}' is not a directory" in caplog.text
    assert "Traceback" not in caplog.text


def test_without_a_token_anyone_may_scrape(make_server: ServerFactory) -> None:
    server = make_server(metrics=True)
    first = scrape(server.url)
    assert first.families["chat_delivery_latency_seconds"] == "histogram"
    assert first.value("chat_broker_up") == 1  # the memory backend always reaches "the others"
    assert first.value("process_resident_memory_bytes") > 0


def exchange(sender: ClientConnection, readers: list[ClientConnection], body: str) -> None:
    """Send one message and wait until every reader has it: one message, one batch."""
    send_json(sender, {"body": body, "client_id": body})
    for reader in readers:
        assert recv_json(reader)["body"] == body


def drive_traffic(server: LiveServer) -> tuple[Scrape, Scrape]:
    """Sockets, refusals, messages, a resend, rate limits and assorted requests, each awaited
    so its count is exact; scraped before, and again while the three sockets are still open."""
    before = scrape(server.url)
    with (
        open_socket(server.ws_url) as alice,
        open_socket(server.ws_url) as bob,
        open_socket(server.ws_url, origin=server.origin) as carol,
        httpx.Client(base_url=server.url, timeout=5) as http,
    ):
        everyone = [alice, bob, carol]
        with pytest.raises(InvalidStatus) as refused:
            open_socket(server.ws_url)
        assert refused.value.response.status_code == 429
        with pytest.raises(InvalidStatus) as refused:
            open_socket(server.ws_url, origin="http://evil.example")
        assert refused.value.response.status_code == 403

        for n in range(4):
            exchange(alice, everyone, f"m{n}")
        send_json(alice, {"body": "m0", "client_id": "m0"})  # a resend: stored already
        assert recv_json(alice)["body"] == "m0"
        send_json(alice, {"body": "one too many"})  # alice's sixth frame: over the burst
        assert recv_json(alice)["error"] == "rate_limited"

        for n in range(2):
            posted = http.post("/api/messages", json={"body": f"p{n}"})
            assert posted.status_code == 201
            for reader in everyone:
                assert recv_json(reader)["body"] == f"p{n}"
        assert http.post("/api/messages", json={"body": "p2"}).status_code == 429
        assert http.get("/api/messages", params={"after": 1}).status_code == 200
        assert http.get("/static/js/main.js").status_code == 200
        assert http.get("/no/such/page/42").status_code == 404
        assert http.put("/api/messages").status_code == 405

        return before, scrape(server.url)


def test_every_metric_moves_with_traffic(make_server: ServerFactory) -> None:
    server = make_server(
        metrics=True,
        max_connections_per_address=3,
        socket_rate_per_second=0.001,
        socket_rate_burst=5,
        post_rate_per_second=0.001,
        post_rate_burst=2,
    )
    before, during = drive_traffic(server)

    def moved(name: str, **labels: str) -> float:
        return during.delta(before, name, **labels)

    assert during.value("chat_open_sockets") == 3
    assert moved("chat_connections_refused_total", reason="too_many_connections") == 1
    assert moved("chat_connections_refused_total", reason="origin") == 1
    assert moved("chat_connections_refused_total", reason="server_full") == 0
    assert moved("chat_rate_limited_total", channel="socket") == 1
    assert moved("chat_rate_limited_total", channel="http") == 1
    # Four socket messages and two posts are new rows; the resend is a batch storing nothing.
    assert moved("chat_messages_stored_total") == 6
    assert moved("chat_commit_batch_size_count") == 7
    assert moved("chat_commit_batch_size_sum") == 7
    assert moved("chat_commit_batch_size_bucket", le="1.0") == 7
    assert moved("chat_commit_duration_seconds_count") == 7
    assert 0 < moved("chat_commit_duration_seconds_sum") < 7 * 5
    # Six published batches, each handed to three sockets.
    assert moved("chat_broadcast_deliveries_total") == 6 * 3
    assert moved("chat_delivery_latency_seconds_count") == 6
    assert 0 < moved("chat_delivery_latency_seconds_sum") < 6 * 2.5
    assert moved("chat_delivery_latency_seconds_bucket", le="+Inf") == 6
    assert moved("chat_slow_consumer_evictions_total") == 0
    assert during.value("chat_broker_up") == 1
    assert moved("chat_relay_replays_total") == 0
    assert moved("chat_broker_reconnects_total") == 0
    assert_requests_counted(before, during)
    wait_for_scrape(server, "all three sockets closed", "chat_open_sockets", 0)


def assert_requests_counted(before: Scrape, during: Scrape) -> None:
    def requests(route: str, method: str, status: str) -> float:
        name = "chat_http_requests_total"
        return during.delta(before, name, route=route, method=method, status=status)

    assert requests("/api/messages", "POST", "201") == 2
    assert requests("/api/messages", "POST", "429") == 1
    assert requests("/api/messages", "GET", "200") == 1
    assert requests("/api/messages", "PUT", "405") == 1
    assert requests("/static", "GET", "200") == 1
    assert requests("unmatched", "GET", "404") == 1
    assert requests("/metrics", "GET", "200") == 1  # `before`; `during` counts after it answers
    # The label is the route's template, never the raw path: no label holds an id or a file.
    routes = {
        dict(labels)["route"]
        for name, labels in during.samples
        if name == "chat_http_requests_total"
    }
    assert routes == {"/api/messages", "/static", "unmatched", "/metrics"}
    every = during.total("chat_http_requests_total") - before.total("chat_http_requests_total")
    assert every == 2 + 1 + 1 + 1 + 1 + 1 + 1


def test_handshakes_refused_for_credentials_are_counted(make_server: ServerFactory) -> None:
    server = make_server(metrics=True, guest_access="none")
    with pytest.raises(InvalidStatus) as refused:
        open_socket(server.ws_url)  # a guest, where guests may not read
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as refused:
        connect(
            server.ws_url,
            additional_headers={"Authorization": "Bearer no-such-token"},
            open_timeout=5,
        )
    assert refused.value.response.status_code == 401
    counted = scrape(server.url)
    assert counted.value("chat_connections_refused_total", reason="sign_in_required") == 1
    assert counted.value("chat_connections_refused_total", reason="invalid_token") == 1
    assert counted.value("chat_connections_refused_total", reason="origin") == 0
    assert counted.value("chat_open_sockets") == 0


def test_a_slow_consumer_eviction_and_a_full_server_are_counted(
    make_server: ServerFactory,
) -> None:
    # As in test_socket: large frames fill a tiny receive buffer, then the send queue.
    server = make_server(
        metrics=True,
        max_connections=3,
        send_queue_size=8,
        max_message_chars=16_000,
        max_frame_bytes=64 * 1024,
    )
    hub = server.app_state["hub"]
    sock = tiny_receive_buffer_socket(server.port)
    body = "y" * 15_000
    with (
        open_socket(server.ws_url, sock=sock, compression=None, max_queue=1) as slow,
        open_socket(server.ws_url) as sender,
        open_socket(server.ws_url) as bystander,
    ):
        with pytest.raises(InvalidStatus) as refused:
            open_socket(server.ws_url)
        assert refused.value.response.status_code == 503
        sent = 0
        while len(hub) == 3 and sent < 300:  # type: ignore[arg-type]
            send_json(sender, {"body": f"{sent} {body}"})
            assert recv_json(sender)["body"].startswith(f"{sent} ")
            assert recv_json(bystander)["body"].startswith(f"{sent} ")
            sent += 1
        assert len(hub) == 2, "the slow consumer was never evicted"  # type: ignore[arg-type]
        counted = scrape(server.url)
        assert counted.value("chat_slow_consumer_evictions_total") == 1
        assert counted.value("chat_connections_refused_total", reason="server_full") == 1
        assert counted.value("chat_messages_stored_total") == sent
        # Every batch reached the two readers; the slow one took the batches before its last.
        deliveries = counted.value("chat_broadcast_deliveries_total")
        assert 2 * sent <= deliveries < 3 * sent
        assert close_code(slow, timeout=10) == 4008
    wait_for_scrape(server, "every socket closed", "chat_open_sockets", 0)
