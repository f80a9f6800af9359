"""The page without JavaScript: server-rendered messages and a form that posts and redirects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from .pages import WAIT_MS, message_with_text
from .server import ChatServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def no_js_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(java_script_enabled=False)
    try:
        yield context.new_page()
    finally:
        context.close()


def post_form(page: Page, *, author: str, body: str) -> None:
    page.fill("#author", author)
    page.fill("#message", body)
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("#messageform [type=submit]")


def test_form_posts_and_redirects_back(chat_server: ChatServer, no_js_page: Page) -> None:
    page = no_js_page
    page.goto(chat_server.url + "/", timeout=WAIT_MS)
    expect(page.locator("#messageform")).to_have_attribute("action", "/a/message/new")
    expect(page.locator("#messageform input[name=_xsrf]")).not_to_have_value("")

    post_form(page, author="kim", body="posted <b>without</b> JavaScript")
    assert page.url == chat_server.url + "/"
    posted = message_with_text(page, "posted <b>without</b> JavaScript")
    expect(posted).to_have_count(1)
    expect(posted.locator(".author")).to_have_text("kim")
    expect(posted.locator(".body b")).to_have_count(0)
    expect(page.locator("#author")).to_have_value("kim")
    expect(page.locator("#form-error")).to_have_count(0)

    post_form(page, author="kim", body="and a second one")
    expect(page.locator("#inbox .message")).to_have_count(2)
    expect(message_with_text(page, "and a second one")).to_be_in_viewport()
    stored = chat_server.all_messages()
    assert [(m["author"], m["body"]) for m in stored] == [
        ("kim", "posted <b>without</b> JavaScript"),
        ("kim", "and a second one"),
    ]


@pytest.mark.parametrize("kind", ["too_long", "empty"])
def test_rejected_form_post_shows_the_error_and_stores_nothing(
    chat_server: ChatServer, no_js_page: Page, kind: str
) -> None:
    page = no_js_page
    chat_server.post_message("already here", author="lee")
    page.goto(chat_server.url + "/", timeout=WAIT_MS)
    limit = int(page.locator("#message").get_attribute("data-max-chars") or "0")
    assert limit > 0
    body = "x" * (limit + 1) if kind == "too_long" else "   "

    post_form(page, author="lee", body=body)
    expect(page.locator("#form-error")).to_be_visible()
    expect(page.locator("#form-error")).not_to_have_text("")
    if kind == "too_long":
        expect(page.locator("#message")).to_have_value(body)
    expect(page.locator("#inbox .message")).to_have_count(1)
    assert [m["body"] for m in chat_server.all_messages()] == ["already here"]
