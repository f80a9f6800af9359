"""Search in Chromium without JavaScript: the top bar's box, the results page grouped by room,
and a click on a result that lands on the message's permalink."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from .pages import WAIT_MS
from .server import ChatServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def no_js_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(java_script_enabled=False)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_search_from_the_top_bar_and_open_a_result(
    chat_server: ChatServer, no_js_page: Page
) -> None:
    wanted = chat_server.post_message("the <b>launch</b> checklist is ready", author="kim")
    chat_server.post_message("lunch is ready", author="lee")
    page = no_js_page
    page.goto(chat_server.url + "/", timeout=WAIT_MS)
    box = page.locator("form.search[role=search] #search-box")
    expect(box).to_have_attribute("type", "search")
    box.fill("launch ready")
    with page.expect_navigation(timeout=WAIT_MS):
        box.press("Enter")  # a one-field form submits on Enter, no script needed
    assert page.url == chat_server.url + "/search?q=launch+ready"
    expect(page.locator("#search-q")).to_have_value("launch ready")
    expect(page.locator("#search-box")).to_have_value("launch ready")
    hits = page.locator(".search-room .search-hit")
    expect(hits).to_have_count(1)
    expect(page.locator(".search-room h3")).to_contain_text("General")
    snippet = hits.first.locator(".search-snippet")
    expect(snippet.locator("mark")).to_have_text(["launch", "ready"])
    expect(snippet.locator("b")).to_have_count(0)  # the body's markup is text
    expect(snippet).to_contain_text("<b>launch</b>")

    permalink = f"/r/general/m/{wanted['id']}"
    link = hits.first.locator("a.search-hit-link")
    expect(link).to_have_attribute("href", permalink)
    with page.expect_navigation(timeout=WAIT_MS):
        link.click()
    # The permalink page itself belongs to the permalink work (issue 13, item 4).
    assert page.url == chat_server.url + permalink


def test_filters_are_form_fields_and_errors_are_shown(
    chat_server: ChatServer, no_js_page: Page
) -> None:
    chat_server.post_message("release notes drafted", author="kim")
    page = no_js_page
    page.goto(chat_server.url + "/search", timeout=WAIT_MS)
    expect(page.locator(".search-results")).to_have_count(0)
    page.fill("#search-q", '"release notes')
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("#search-submit")
    expect(page.locator("#form-error")).to_contain_text("Unbalanced quotes")
    page.fill("#search-q", '"release notes"')
    page.select_option("#search-sort", "relevance")
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("#search-submit")
    expect(page.locator(".search-hit")).to_have_count(1)
    expect(page.locator("#search-sort")).to_have_value("relevance")
    page.fill("#search-room", "no-such-room")
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("#search-submit")
    expect(page.locator("#form-error")).to_contain_text("No such room")
