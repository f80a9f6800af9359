"""A permalink and a search result with JavaScript on: the page opens on the message, in
context and highlighted, not at the bottom; "/" focuses the search box from anywhere but a
field."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .pages import WAIT_MS
from .server import ChatServer

pytestmark = pytest.mark.e2e


def test_a_permalink_opens_on_its_message_and_a_search_result_leads_there(
    chat_server: ChatServer, page: Page
) -> None:
    for n in range(30):
        chat_server.post_message(f"filler {n:02d}", author="kim")
    wanted = chat_server.post_message("the launch checklist is ready", author="kim")
    for n in range(30):
        chat_server.post_message(f"later {n:02d}", author="lee")
    page.set_viewport_size({"width": 1000, "height": 600})
    page.goto(f"{chat_server.url}/r/general/m/{wanted['id']}", timeout=WAIT_MS)
    target = page.locator(f"#m{wanted['id']}")
    expect(target).to_have_class(re.compile(r"\bhighlighted\b"))
    expect(target).to_be_in_viewport(timeout=WAIT_MS)

    page.goto(chat_server.url + "/", timeout=WAIT_MS)
    page.locator("body").press("/")
    box = page.locator("#search-box")
    expect(box).to_be_focused()
    box.fill("launch checklist")
    with page.expect_navigation(timeout=WAIT_MS):
        box.press("Enter")
    with page.expect_navigation(timeout=WAIT_MS):
        page.locator(".search-hit a.search-hit-link").first.click()
    expect(page.locator(f"#m{wanted['id']}")).to_be_in_viewport(timeout=WAIT_MS)


def test_slash_typed_in_the_composer_stays_a_slash(chat_server: ChatServer, page: Page) -> None:
    page.goto(chat_server.url + "/", timeout=WAIT_MS)
    composer = page.locator("#message")
    composer.click()
    composer.press("/")
    expect(composer).to_have_value("/")
    expect(page.locator("#search-box")).not_to_be_focused()
