"""Rooms without JavaScript in Chromium: switch rooms, post, page back, create a room, start a
direct message, and open the room list as a drawer on a phone."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from .pages import WAIT_MS, message_with_text, register_by_api
from .server import ChatServer

pytestmark = pytest.mark.e2e

PER_PAGE = 10
PHONE = {"width": 360, "height": 640}

NoJs = Callable[..., Page]


@pytest.fixture
def chat_server_env() -> dict[str, str]:
    return {"CHAT_PAGE_MESSAGES": str(PER_PAGE)}


@pytest.fixture
def signed_in(browser: Browser, chat_server: ChatServer) -> Iterator[NoJs]:
    """A page with JavaScript off, signed in as a new account."""
    contexts: list[BrowserContext] = []

    def factory(username: str, **options: Any) -> Page:
        context = browser.new_context(java_script_enabled=False, **options)
        contexts.append(context)
        register_by_api(context, chat_server, username)
        return context.new_page()

    yield factory
    for context in contexts:
        context.close()


def submit(page: Page, selector: str) -> None:
    with page.expect_navigation(timeout=WAIT_MS):
        page.click(selector)


def post(page: Page, body: str) -> None:
    page.fill("#message", body)
    submit(page, "#messageform [type=submit]")


def test_create_a_room_post_and_switch_rooms(chat_server: ChatServer, signed_in: NoJs) -> None:
    ada = signed_in("ada")
    ada.goto(chat_server.url + "/", timeout=WAIT_MS)
    expect(ada.locator("#rooms a[aria-current=page]")).to_have_text("General")
    post(ada, "hello general")

    with ada.expect_navigation(timeout=WAIT_MS):
        ada.click("#rooms >> text=New room")
    ada.fill("#name", "ops")
    ada.fill("#title", "Operations")
    ada.fill("#topic", "pagers and coffee")
    submit(ada, "#room-form [type=submit]")
    assert ada.url == chat_server.url + "/r/ops"
    expect(ada.locator("#room-header .room-title")).to_have_text("Operations")
    expect(ada.locator("#room-header .room-topic")).to_have_text("pagers and coffee")
    expect(ada.locator("body")).to_have_attribute("data-room", "ops")

    post(ada, "hello ops")
    assert ada.url == chat_server.url + "/r/ops"
    expect(message_with_text(ada, "hello ops")).to_have_count(1)
    expect(message_with_text(ada, "hello general")).to_have_count(0)

    with ada.expect_navigation(timeout=WAIT_MS):
        ada.click('#rooms li[data-room="general"] a')
    assert ada.url == chat_server.url + "/r/general"
    expect(message_with_text(ada, "hello general")).to_have_count(1)
    expect(message_with_text(ada, "hello ops")).to_have_count(0)
    expect(ada.locator("#rooms a[aria-current=page]")).to_have_text("General")
    expect(ada.locator("#form-error")).to_have_count(0)


def test_page_back_and_forward(chat_server: ChatServer, signed_in: NoJs) -> None:
    for n in range(PER_PAGE + 4):
        chat_server.post_message(f"note {n:02d}", author="kai")
    reader = signed_in("lu")
    reader.goto(chat_server.url + "/r/general", timeout=WAIT_MS)
    expect(reader.locator("#inbox .message")).to_have_count(PER_PAGE)
    expect(message_with_text(reader, "note 13")).to_have_count(1)
    expect(reader.locator(".pager-newer")).to_have_count(0)

    with reader.expect_navigation(timeout=WAIT_MS):
        reader.click(".pager-older")
    expect(reader.locator("#inbox .message")).to_have_count(4)
    expect(message_with_text(reader, "note 00")).to_have_count(1)
    expect(message_with_text(reader, "note 13")).to_have_count(0)
    expect(reader.locator(".pager-older")).to_have_count(0)

    with reader.expect_navigation(timeout=WAIT_MS):
        reader.click(".pager-newer")
    expect(message_with_text(reader, "note 04")).to_have_count(1)
    expect(message_with_text(reader, "note 00")).to_have_count(0)


def test_start_a_direct_message(chat_server: ChatServer, signed_in: NoJs) -> None:
    ada, bob = signed_in("ada"), signed_in("bob")
    ada.goto(chat_server.url + "/", timeout=WAIT_MS)
    ada.fill("#dm-username", "bob")
    submit(ada, ".dm-form [type=submit]")
    assert ada.url == chat_server.url + "/dm/bob"
    submit(ada, "#dm-form [type=submit]")
    assert re.fullmatch(re.escape(chat_server.url) + r"/r/dm-\d+-\d+", ada.url), ada.url
    dm = ada.url.rsplit("/", 1)[1]
    post(ada, "just between us")

    bob.goto(chat_server.url + "/", timeout=WAIT_MS)
    entry = bob.locator(f'#rooms li.room[data-room="{dm}"]')
    expect(entry).to_have_class(re.compile(r"\bhas-unread\b"))
    expect(entry.locator(".unread-count")).to_contain_text("1")
    with bob.expect_navigation(timeout=WAIT_MS):
        entry.locator("a").click()
    expect(message_with_text(bob, "just between us")).to_have_count(1)
    bob.goto(chat_server.url + "/", timeout=WAIT_MS)
    expect(bob.locator(f'#rooms li.room[data-room="{dm}"]')).not_to_have_class(
        re.compile(r"\bhas-unread\b")
    )

    # Starting it again finds the same conversation.
    bob.goto(chat_server.url + "/dm/ada", timeout=WAIT_MS)
    assert bob.url.endswith("/r/" + dm)


def test_the_room_list_is_a_drawer_on_a_phone(chat_server: ChatServer, signed_in: NoJs) -> None:
    ada = signed_in("ada", viewport=PHONE)
    ada.goto(chat_server.url + "/", timeout=WAIT_MS)
    rooms = ada.locator("#rooms")
    expect(rooms).not_to_be_in_viewport()
    width = ada.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways at {PHONE['width']}px"
    composer = ada.locator("#messageform").bounding_box()
    assert composer is not None
    assert abs(composer["y"] + composer["height"] - PHONE["height"]) <= 1

    ada.click("#room-header .drawer-button")
    expect(rooms).to_be_in_viewport()
    expect(ada.locator('#rooms li[data-room="general"] a')).to_be_visible()
    ada.click("#rooms .drawer-close")
    expect(rooms).not_to_be_in_viewport()


def test_a_permalink_lands_on_the_message(chat_server: ChatServer, signed_in: NoJs) -> None:
    ids = [chat_server.post_message(f"entry {n:02d}", author="kai")["id"] for n in range(40)]
    target = ids[20]
    reader = signed_in("lu", viewport={"width": 800, "height": 600})
    reader.goto(f"{chat_server.url}/r/general/m/{target}#m{target}", timeout=WAIT_MS)
    marked = reader.locator("#inbox .message.highlighted")
    expect(marked).to_have_count(1)
    expect(marked).to_have_attribute("id", f"m{target}")
    expect(marked).to_be_in_viewport()
    expect(message_with_text(reader, "entry 30")).to_have_count(0)  # a page around it
    with reader.expect_navigation(timeout=WAIT_MS):
        reader.click(".pager-newer")
    expect(message_with_text(reader, "entry 30")).to_have_count(1)
