"""How the page behaves for a reader: phone layout, dark mode, and where the scroll goes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from .pages import WAIT_MS, message_with_text, open_chat, send
from .server import ChatServer

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 640}


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not rendered"
    return found


def rgb(css_color: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", css_color)[:3])


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_layout(chat_server: ChatServer, browser: Browser, scheme: str) -> None:
    context = browser.new_context(viewport=PHONE, color_scheme=scheme)
    try:
        page = context.new_page()
        chat_server.post_message("see https://example.org/" + "a" * 150, author="kai")
        chat_server.post_message("b" * 300, author="kai")
        open_chat(page, chat_server, name="lu")
        send(page, "mine, on the right")
        mine = message_with_text(page, "mine, on the right")
        expect(mine).to_have_count(1, timeout=WAIT_MS)

        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways at {PHONE['width']}px"
        link = message_with_text(page, "example.org").locator("a")
        expect(link).to_have_attribute("href", re.compile(r"^https://example\.org/a+$"))
        assert box(page, "#inbox .message a")["width"] <= PHONE["width"]

        composer = box(page, "#messageform")
        assert abs(composer["y"] + composer["height"] - PHONE["height"]) <= 1
        theirs = box(page, "#inbox .message:not(.own) .body")
        own = box(page, "#inbox .message.own .body")
        assert own["x"] + own["width"] > theirs["x"] + theirs["width"] - 1
        assert own["x"] > theirs["x"] + 20, "own messages are not aligned apart"
        own_bg = mine.locator(".body").evaluate("el => getComputedStyle(el).backgroundColor")
        their_bg = page.locator("#inbox .message:not(.own) .body").first.evaluate(
            "el => getComputedStyle(el).backgroundColor"
        )
        assert own_bg != their_bg
        expect(mine).to_be_in_viewport()

        background = rgb(page.evaluate("getComputedStyle(document.body).backgroundColor"))
        assert (sum(background) < 3 * 80) == (scheme == "dark"), background
    finally:
        context.close()


def test_new_messages_scroll_only_a_reader_at_the_bottom(
    chat_server: ChatServer, page: Page
) -> None:
    page.set_viewport_size({"width": 800, "height": 600})
    for n in range(40):
        chat_server.post_message(f"filler {n:02d}", author="mo")
    open_chat(page, chat_server, name="nell")
    scroller = page.locator("#scroller")
    at_bottom = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 2"
    assert scroller.evaluate(at_bottom), "the page did not open at the newest message"

    scroller.evaluate("el => { el.scrollTop = 0; }")
    chat_server.post_message("while reading old ones", author="mo")
    arrived = message_with_text(page, "while reading old ones")
    expect(arrived).to_have_count(1, timeout=WAIT_MS)
    assert scroller.evaluate("el => el.scrollTop") == 0, "a reader scrolled up was moved"
    expect(arrived).not_to_be_in_viewport()

    scroller.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    chat_server.post_message("while at the bottom", author="mo")
    expect(message_with_text(page, "while at the bottom")).to_be_in_viewport(timeout=WAIT_MS)
