"""Small helpers the end-to-end tests share: open the page, send, read what the page shows."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from .server import ChatServer

WAIT_MS = 10_000
# Reconnecting waits out a jittered backoff capped at ~10 s, then catches up over HTTP.
RECOVER_MS = 20_000
OWN = re.compile(r"(^|\s)own(\s|$)")


def open_chat(page: Page, server: ChatServer, *, name: str = "") -> Page:
    page.goto(server.url + "/", timeout=WAIT_MS)
    expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    if name:
        page.fill("#author", name)
        page.locator("#author").dispatch_event("change")
    return page


def new_chat_page(browser: Browser, server: ChatServer, *, name: str = "") -> Page:
    return open_chat(browser.new_context().new_page(), server, name=name)


def send(page: Page, text: str) -> None:
    page.fill("#message", text)
    page.press("#message", "Enter")


def message_with_text(page: Page, text: str) -> Locator:
    return page.locator("#inbox .message", has=page.locator(".body", has_text=text))


def shown_ids(page: Page) -> list[int]:
    ids: list[str] = page.eval_on_selector_all(
        "#inbox .message", "els => els.map(el => el.dataset.id || el.id.slice(1))"
    )
    return [int(value) for value in ids]


def assert_ids_unique_and_ordered(page: Page) -> list[int]:
    ids = shown_ids(page)
    assert len(ids) == len(set(ids)), f"duplicate messages on the page: {ids}"
    assert ids == sorted(ids), f"messages out of id order: {ids}"
    return ids


# ---- accounts ----

PASSWORD = "a quiet orchard path"


def register_by_api(
    context: BrowserContext, server: ChatServer, username: str, display_name: str = ""
) -> dict[str, Any]:
    """An account, signed in in `context` (the API request shares the context's cookies)."""
    response = context.request.post(
        server.url + "/api/auth/register",
        data={"username": username, "display_name": display_name, "password": PASSWORD},
        timeout=WAIT_MS,
    )
    assert response.status == 201, response.text()
    user: dict[str, Any] = response.json()["user"]
    return user


def sign_in(page: Page, server: ChatServer, username: str, *, next_path: str = "/") -> None:
    """Through the sign-in form, as a person does; ends on `next_path`."""
    page.goto(f"{server.url}/login?{urlencode({'next': next_path})}", timeout=WAIT_MS)
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("#login-form [type=submit]")
    assert page.url == server.url + next_path, page.url


def shown_identity(page: Page) -> Locator:
    return page.locator("header .identity")
