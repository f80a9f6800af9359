"""Rooms in the browser: private rooms, unread counts in the room list and the tab title, read
positions that move only when the messages were seen, and direct messages."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from .conftest import ConsoleProblems
from .pages import WAIT_MS, message_with_text, open_chat, register_by_api, send
from .server import ChatServer

pytestmark = pytest.mark.e2e

# Lets a test hide the tab: Chromium never hides a Playwright page by itself.
HIDEABLE = """
Object.defineProperty(Document.prototype, "visibilityState", {
  configurable: true, get() { return window.__hidden ? "hidden" : "visible"; } });
Object.defineProperty(Document.prototype, "hidden", {
  configurable: true, get() { return Boolean(window.__hidden); } });
"""


def set_hidden(page: Page, hidden: bool) -> None:
    page.evaluate(
        "hidden => { window.__hidden = hidden;"
        " document.dispatchEvent(new Event('visibilitychange')); }",
        hidden,
    )


def person(browser: Browser, server: ChatServer, username: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context()
    register_by_api(context, server, username, username.capitalize())
    page = context.new_page()
    page.add_init_script(HIDEABLE)
    open_chat(page, server)
    return context, page


def room_item(page: Page, name: str) -> Locator:
    return page.locator(f'#rooms li.room[data-room="{name}"]')


def open_room(page: Page, name: str) -> None:
    room_item(page, name).locator("a").click()
    expect(page).to_have_url(re.compile(rf"/r/{re.escape(name)}$"), timeout=WAIT_MS)


def api_rooms(context: BrowserContext, server: ChatServer) -> dict[str, dict[str, Any]]:
    response = context.request.get(server.url + "/api/rooms", timeout=WAIT_MS)
    assert response.ok, response.text()
    return {room["name"]: room for room in response.json()["rooms"]}


def server_unread(context: BrowserContext, server: ChatServer, name: str) -> int:
    return int(api_rooms(context, server)[name]["unread"])


def post_as(context: BrowserContext, server: ChatServer, room: str, body: str) -> dict[str, Any]:
    response = context.request.post(
        f"{server.url}/api/rooms/{room}/messages", data={"body": body}, timeout=WAIT_MS
    )
    assert response.status == 201, response.text()
    message: dict[str, Any] = response.json()
    return message


def make_room(
    context: BrowserContext, server: ChatServer, name: str, *, visibility: str, members: list[str]
) -> None:
    created = context.request.post(
        server.url + "/api/rooms",
        data={"name": name, "title": name.capitalize() + " room", "visibility": visibility},
        timeout=WAIT_MS,
    )
    assert created.status == 201, created.text()
    for username in members:
        added = context.request.put(
            f"{server.url}/api/rooms/{name}/members/{username}", timeout=WAIT_MS
        )
        assert added.ok, added.text()


def stays(check: Any, seconds: float = 1.5) -> None:
    """`check` holds for `seconds` (something that must NOT happen, given time to happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check()
        time.sleep(0.1)


def test_private_room_two_chat_a_third_cannot_find_it(
    chat_server: ChatServer, browser: Browser, console_problems: ConsoleProblems
) -> None:
    ada_context, ada = person(browser, chat_server, "ada")
    bob_context, bob = person(browser, chat_server, "bob")
    eve_context, eve = person(browser, chat_server, "eve")
    console_problems.watch(ada)
    console_problems.watch(bob)
    make_room(ada_context, chat_server, "secret", visibility="private", members=["bob"])

    # Both members see the room appear in their list without a reload.
    expect(room_item(ada, "secret")).to_have_count(1, timeout=WAIT_MS)
    expect(room_item(bob, "secret")).to_have_count(1, timeout=WAIT_MS)
    open_room(ada, "secret")
    expect(ada.locator("#room-header .room-title")).to_have_text("Secret room")
    send(ada, "the plan is ready")
    expect(message_with_text(ada, "the plan is ready")).to_have_count(1, timeout=WAIT_MS)

    # Bob is looking at general: the count rises there, and in the tab title.
    expect(room_item(bob, "secret").locator(".unread-count")).to_have_text("1", timeout=WAIT_MS)
    expect(room_item(bob, "secret")).to_have_class(re.compile(r"\bhas-unread\b"))
    expect(bob).to_have_title("(1) General · Chat")
    expect(message_with_text(bob, "the plan is ready")).to_have_count(0)
    open_room(bob, "secret")
    expect(message_with_text(bob, "the plan is ready")).to_have_count(1, timeout=WAIT_MS)
    expect(room_item(bob, "secret").locator(".unread-count")).to_have_text("", timeout=WAIT_MS)
    expect(bob).to_have_title("Secret room · Chat")
    assert_eventually(lambda: server_unread(bob_context, chat_server, "secret") == 0)
    send(bob, "count me in")
    expect(message_with_text(ada, "count me in")).to_have_count(1, timeout=WAIT_MS)

    # Back and forward switch rooms without a reload.
    bob.go_back()
    expect(bob).not_to_have_url(re.compile(r"/r/secret$"))
    expect(message_with_text(bob, "the plan is ready")).to_have_count(0, timeout=WAIT_MS)
    bob.go_forward()
    expect(message_with_text(bob, "count me in")).to_have_count(1, timeout=WAIT_MS)

    # Eve: not in her list, not through the API, not by URL, never on her socket.
    assert "secret" not in api_rooms(eve_context, chat_server)
    for path in ("/api/rooms/secret", "/api/rooms/secret/messages"):
        response = eve_context.request.get(chat_server.url + path, timeout=WAIT_MS)
        assert response.status == 404, (path, response.status)
        assert "the plan" not in response.text()
    expect(room_item(eve, "secret")).to_have_count(0)
    expect(message_with_text(eve, "the plan is ready")).to_have_count(0)
    by_url = eve.context.new_page()
    response = by_url.goto(chat_server.url + "/r/secret", timeout=WAIT_MS)
    assert response is not None and response.status == 404
    assert "the plan" not in by_url.content()
    assert console_problems.problems == []


def assert_eventually(check: Any, seconds: float = WAIT_MS / 1000) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.1)


def test_read_only_when_seen_not_when_scrolled_up_or_hidden(
    chat_server: ChatServer, browser: Browser
) -> None:
    ada_context, _ = person(browser, chat_server, "ada")
    bob_context, bob = person(browser, chat_server, "bob")
    make_room(ada_context, chat_server, "ops", visibility="public", members=["bob"])
    for n in range(40):
        post_as(ada_context, chat_server, "ops", f"filler {n:02d}")
    bob.set_viewport_size({"width": 900, "height": 600})
    expect(room_item(bob, "ops")).to_have_count(1, timeout=WAIT_MS)
    open_room(bob, "ops")
    expect(message_with_text(bob, "filler 39")).to_be_in_viewport(timeout=WAIT_MS)
    assert_eventually(lambda: server_unread(bob_context, chat_server, "ops") == 0)

    # Scrolled up: a new message stays unread, and a button offers the way down.
    bob.locator("#scroller").evaluate("el => { el.scrollTop = 0; }")
    post_as(ada_context, chat_server, "ops", "while bob reads old ones")
    expect(message_with_text(bob, "while bob reads old ones")).to_have_count(1, timeout=WAIT_MS)
    expect(bob.locator("#jump-new")).to_be_visible()
    stays(lambda: assert_unread(bob_context, chat_server, "ops", 1))
    expect(room_item(bob, "ops").locator(".unread-count")).to_have_text("1")
    bob.locator("#jump-new").click()
    expect(message_with_text(bob, "while bob reads old ones")).to_be_in_viewport(timeout=WAIT_MS)
    assert_eventually(lambda: server_unread(bob_context, chat_server, "ops") == 0)
    expect(room_item(bob, "ops").locator(".unread-count")).to_have_text("")

    # At the bottom but hidden: not seen, so not read, until the tab shows again.
    set_hidden(bob, True)
    post_as(ada_context, chat_server, "ops", "while bob is away")
    expect(message_with_text(bob, "while bob is away")).to_have_count(1, timeout=WAIT_MS)
    stays(lambda: assert_unread(bob_context, chat_server, "ops", 1))
    expect(bob).to_have_title("(1) Ops room · Chat")
    set_hidden(bob, False)
    assert_eventually(lambda: server_unread(bob_context, chat_server, "ops") == 0)
    expect(bob).to_have_title("Ops room · Chat", timeout=WAIT_MS)


def assert_unread(context: BrowserContext, server: ChatServer, room: str, expected: int) -> None:
    assert server_unread(context, server, room) == expected


def test_direct_message(chat_server: ChatServer, browser: Browser) -> None:
    ada_context, ada = person(browser, chat_server, "ada")
    _, bob = person(browser, chat_server, "bob")
    started = ada_context.request.post(
        chat_server.url + "/api/dms", data={"usernames": ["bob"]}, timeout=WAIT_MS
    )
    assert started.ok, started.text()
    name = started.json()["room"]["name"]
    expect(room_item(ada, name)).to_have_count(1, timeout=WAIT_MS)
    expect(room_item(ada, name).locator("a")).to_have_text("Bob")
    open_room(ada, name)
    send(ada, "just between us")
    expect(room_item(bob, name).locator(".unread-count")).to_have_text("1", timeout=WAIT_MS)
    expect(room_item(bob, name).locator("a")).to_have_text("Ada")
    open_room(bob, name)
    expect(message_with_text(bob, "just between us")).to_have_count(1, timeout=WAIT_MS)
    send(bob, "agreed")
    expect(message_with_text(ada, "agreed")).to_have_count(1, timeout=WAIT_MS)
    # The same DM is found again rather than made twice.
    again = ada_context.request.post(
        chat_server.url + "/api/dms", data={"usernames": ["bob"]}, timeout=WAIT_MS
    )
    assert again.json()["room"]["name"] == name
    expect(ada.locator("#rooms li.room.dm")).to_have_count(1)
