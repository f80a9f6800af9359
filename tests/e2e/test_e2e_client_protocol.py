"""The page's client (static/js/) against frames the real server rarely sends on demand.

The page and the history API are real; the WebSocket is answered by Playwright's routing, so a
test can send Tornado-era frames, out-of-order ids, error frames and rate limits at will.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from .pages import OWN, WAIT_MS, assert_ids_unique_and_ordered, message_with_text, open_chat, send
from .server import ChatServer

pytestmark = pytest.mark.e2e

OUTBOX_KEY = "chat.outbox"  # static/js/outbox.js's localStorage key for unsent messages


class FakeSocket:
    """Answers /chatsocket for one page; records what the page sent."""

    def __init__(self, page: Page) -> None:
        self.routes: list[WebSocketRoute] = []
        self.received: list[dict[str, Any]] = []
        self.on_frame: Any = None
        page.route_web_socket("**/chatsocket", self._accept)

    def _accept(self, route: WebSocketRoute) -> None:
        self.routes.append(route)
        route.on_message(self._on_message)

    def _on_message(self, message: str | bytes) -> None:
        frame = json.loads(message)
        self.received.append(frame)
        if self.on_frame is not None:
            self.on_frame(frame)

    def send(self, frame: dict[str, Any]) -> None:
        self.routes[-1].send(json.dumps(frame))


def fragment(message_id: int, body: str, author: str = "tornado") -> str:
    return (
        f'<div class="message" id="m{message_id}" data-id="{message_id}">'
        f'<div class="meta"><span class="author">{author}</span></div>'
        f'<div class="body">{body}</div></div>'
    )


def stored(message_id: int, frame: dict[str, Any]) -> dict[str, Any]:
    """The server's answer to a frame it stored."""
    return {
        "type": "message",
        "id": message_id,
        "body": frame["body"],
        "author": frame["author"],
        "client_id": frame["client_id"],
        "html": fragment(message_id, frame["body"], frame["author"]),
    }


@pytest.fixture
def fake(chat_server: ChatServer, page: Page) -> FakeSocket:
    socket = FakeSocket(page)
    open_chat(page, chat_server, name="nina")
    return socket


def test_tornado_frames_and_out_of_order_ids(fake: FakeSocket, page: Page) -> None:
    # The Tornado demo's frame: no type, an id and an html fragment.
    fake.send({"id": 30, "body": "thirty", "html": fragment(30, "thirty")})
    fake.send({"type": "message", "id": 10, "body": "ten", "html": fragment(10, "ten")})
    fake.send({"type": "message", "id": 20, "body": "twenty", "html": fragment(20, "twenty")})
    fake.send({"type": "message", "id": 20, "body": "twenty", "html": fragment(20, "twenty")})
    expect(page.locator("#inbox .message")).to_have_count(3, timeout=WAIT_MS)
    assert assert_ids_unique_and_ordered(page) == [10, 20, 30]


def test_message_without_html_is_shown_as_text(fake: FakeSocket, page: Page) -> None:
    fake.send({"type": "message", "id": 7, "body": "<img src=x onerror=alert(1)>", "author": "eve"})
    shown = page.locator("#m7")
    expect(shown.locator(".body")).to_have_text("<img src=x onerror=alert(1)>", timeout=WAIT_MS)
    expect(shown.locator("img")).to_have_count(0)


def test_error_frame_without_client_id_is_a_notice(fake: FakeSocket, page: Page) -> None:
    fake.send({"type": "error", "error": "invalid_json", "detail": "that was not JSON"})
    expect(page.locator("#notice")).to_have_text("that was not JSON", timeout=WAIT_MS)
    expect(page.locator("#notice")).to_be_hidden(timeout=WAIT_MS)


@pytest.mark.parametrize(
    "error",
    [
        {"error": "rate_limited", "detail": "slow down", "retry_after": 1},
        {"error": "storage_unavailable", "detail": "the message was not stored"},
    ],
    ids=["rate_limited", "storage_unavailable"],
)
def test_message_refused_for_now_stays_pending_and_is_retried(
    fake: FakeSocket, page: Page, error: dict[str, Any]
) -> None:
    answers = iter(["refuse", "store"])

    def answer(frame: dict[str, Any]) -> None:
        if next(answers, None) == "refuse":
            fake.send({"type": "error", **error, "client_id": frame["client_id"]})
        else:
            fake.send(stored(1, frame))

    fake.on_frame = answer
    send(page, "patience")
    pending = page.locator("#outbox .pending-message", has_text="patience")
    expect(pending).to_contain_text("retrying")
    expect(message_with_text(page, "patience")).to_have_count(1, timeout=WAIT_MS)
    expect(pending).to_have_count(0)
    expect(message_with_text(page, "patience")).to_have_class(OWN)
    assert len(fake.received) == 2
    assert fake.received[0] == fake.received[1]
    # A message to general names no room: the frame a Tornado-era server accepts.
    assert set(fake.received[0]) == {"body", "author", "client_id"}
    assert fake.received[0]["author"] == "nina"
    assert page.evaluate(f"localStorage.getItem({OUTBOX_KEY!r})") == "[]"


def test_rate_limited_without_client_id_retries_the_message_in_flight(
    fake: FakeSocket, page: Page
) -> None:
    answers = iter(["refuse", "store", "store"])

    def answer(frame: dict[str, Any]) -> None:
        if next(answers, None) == "refuse":
            refusal = {"type": "error", "error": "rate_limited", "detail": "wait"}
            fake.send({**refusal, "retry_after": 0.5})
        else:
            fake.send(stored(len(fake.received), frame))

    fake.on_frame = answer
    send(page, "one")
    send(page, "two")
    expect(page.locator("#inbox .message")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#outbox > *")).to_have_count(0)
    expect(page.locator("#notice")).to_be_hidden()
    assert [frame["body"] for frame in fake.received] == ["one", "one", "two"]
    assert [message.inner_text() for message in page.locator("#inbox .body").all()] == [
        "one",
        "two",
    ]


def test_rejected_message_shows_the_error_and_leaves_the_outbox(
    fake: FakeSocket, page: Page
) -> None:
    def reject(frame: dict[str, Any]) -> None:
        fake.send(
            {
                "type": "error",
                "error": "invalid_author",
                "detail": "that name is not allowed",
                "client_id": frame["client_id"],
            }
        )

    fake.on_frame = reject
    send(page, "will be refused")
    failed = page.locator("#outbox .pending-message.failed", has_text="will be refused")
    expect(failed).to_contain_text("that name is not allowed", timeout=WAIT_MS)
    assert page.evaluate(f"localStorage.getItem({OUTBOX_KEY!r})") == "[]"
    failed.get_by_role("button", name="Edit").click()
    expect(failed).to_have_count(0)
    expect(page.locator("#message")).to_have_value("will be refused")
    assert len(fake.received) == 1


def test_too_long_message_is_not_sent(fake: FakeSocket, page: Page) -> None:
    limit = int(page.locator("#message").get_attribute("data-max-chars") or "0")
    page.fill("#message", "z" * (limit + 1))
    expect(page.locator("#counter")).to_have_class(re.compile(r"\bover\b"))
    page.press("#message", "Enter")
    expect(page.locator("#notice")).to_contain_text("too long")
    expect(page.locator("#outbox > *")).to_have_count(0)
    page.fill("#message", "line one")
    page.press("#message", "Shift+Enter")
    page.locator("#message").press_sequentially("line two")
    expect(page.locator("#message")).to_have_value("line one\nline two")
    assert fake.received == []


def test_reconnects_with_growing_jittered_backoff(chat_server: ChatServer, page: Page) -> None:
    attempts: list[float] = []

    def refuse(route: WebSocketRoute) -> None:
        attempts.append(time.monotonic())
        route.close(code=1012, reason="restarting")

    page.route_web_socket("**/chatsocket", refuse)
    page.goto(chat_server.url + "/", timeout=WAIT_MS)
    deadline = time.monotonic() + 15
    while len(attempts) < 5 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(attempts) >= 5, f"only {len(attempts)} connection attempts in 15 s"
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts[:5])]
    # After the n-th failure the page waits between half and all of min(10 s, 0.5 s * 2**(n-1)).
    for n, gap in enumerate(gaps, start=1):
        ceiling = min(10.0, 0.5 * 2 ** (n - 1))
        assert ceiling / 2 - 0.05 <= gap <= ceiling + 0.5, (n, gaps)
    expect(page.locator("#status")).not_to_have_attribute("data-state", "connected")


def test_client_id_without_crypto_random_uuid(chat_server: ChatServer, page: Page) -> None:
    # randomUUID exists only in secure contexts; a plain-http deployment on a LAN has none.
    page.add_init_script("delete Crypto.prototype.randomUUID;")
    fake = FakeSocket(page)
    fake.on_frame = lambda frame: fake.send(stored(len(fake.received), frame))
    open_chat(page, chat_server, name="olga")
    send(page, "first")
    send(page, "second")
    expect(page.locator("#inbox .message.own")).to_have_count(2, timeout=WAIT_MS)
    deadline = time.monotonic() + WAIT_MS / 1000
    while len(fake.received) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    ids = [frame["client_id"] for frame in fake.received]
    assert len(ids) == 2, fake.received
    assert len(set(ids)) == 2
    assert all(re.fullmatch(r"c-[0-9a-f]{32}", client_id) for client_id in ids), ids


def test_unanswered_message_means_a_dead_socket(chat_server: ChatServer, page: Page) -> None:
    """The first socket swallows everything; the page gives up on it and resends on a new one."""
    fake = FakeSocket(page)

    def answer_from_the_second_socket(frame: dict[str, Any]) -> None:
        if len(fake.routes) > 1:
            fake.send(stored(1, frame))

    fake.on_frame = answer_from_the_second_socket
    open_chat(page, chat_server, name="pat")
    send(page, "anyone there?")
    pending = page.locator("#outbox .pending-message", has_text="anyone there?")
    expect(pending).to_have_count(1)
    # ANSWER_TIMEOUT_MS in static/js/main.js is 10 s; then a reconnect after a short backoff.
    expect(message_with_text(page, "anyone there?")).to_have_count(1, timeout=20_000)
    expect(pending).to_have_count(0)
    assert len(fake.routes) == 2
    assert [frame["body"] for frame in fake.received] == ["anyone there?", "anyone there?"]
    assert fake.received[0]["client_id"] == fake.received[1]["client_id"]


def test_catch_up_does_not_skip_a_lower_id_that_arrived_late(
    chat_server: ChatServer, fake: FakeSocket, page: Page
) -> None:
    # Two server processes: id 1 commits on one node, id 2 on another, and only id 2 reaches
    # this page before its socket drops. The catch-up after reconnecting must still find id 1.
    first = chat_server.post_message("committed first, relayed late")
    second = chat_server.post_message("committed second, relayed at once")
    fake.send(
        {"type": "message", "id": second["id"], "body": second["body"], "html": second["html"]}
    )
    expect(page.locator(f"#m{second['id']}")).to_have_count(1, timeout=WAIT_MS)
    fake.routes[-1].close(code=1012, reason="node restarting")
    expect(page.locator(f"#m{first['id']}")).to_have_count(1, timeout=WAIT_MS)
    assert assert_ids_unique_and_ordered(page) == [first["id"], second["id"]]
