"""The chat page in a real browser against a real server: chatting, history, reconnecting."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import ConsoleProblems
from .pages import (
    OWN,
    RECOVER_MS,
    WAIT_MS,
    assert_ids_unique_and_ordered,
    message_with_text,
    new_chat_page,
    open_chat,
    send,
    shown_ids,
)
from .server import ChatServer

pytestmark = pytest.mark.e2e


def wait_disconnected(page: Page) -> None:
    expect(page.locator("#status")).not_to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )


def test_two_people_see_each_message_once_and_only_their_own_as_own(
    chat_server: ChatServer, browser: Browser
) -> None:
    alice = new_chat_page(browser, chat_server, name="alice")
    bob = new_chat_page(browser, chat_server, name="bob")

    send(alice, "hello from alice")
    expect(message_with_text(bob, "hello from alice")).to_have_count(1, timeout=WAIT_MS)
    send(bob, "hi alice, bob here")

    for page in (alice, bob):
        expect(message_with_text(page, "hello from alice")).to_have_count(1, timeout=WAIT_MS)
        expect(message_with_text(page, "bob here")).to_have_count(1, timeout=WAIT_MS)
        expect(page.locator("#inbox .message")).to_have_count(2)
        expect(page.locator("#outbox > *")).to_have_count(0, timeout=WAIT_MS)
        assert_ids_unique_and_ordered(page)

    expect(message_with_text(alice, "hello from alice")).to_have_class(OWN)
    expect(message_with_text(alice, "bob here")).not_to_have_class(OWN)
    expect(message_with_text(bob, "bob here")).to_have_class(OWN)
    expect(message_with_text(bob, "hello from alice")).not_to_have_class(OWN)

    stored = chat_server.all_messages()
    assert [(m["author"], m["body"]) for m in stored] == [
        ("alice", "hello from alice"),
        ("bob", "hi alice, bob here"),
    ]
    assert all(m["client_id"] for m in stored), "the page must send a client_id"


def test_reload_shows_history_with_and_without_javascript(
    chat_server: ChatServer, browser: Browser, page: Page
) -> None:
    open_chat(page, chat_server, name="carol")
    for text in ("first line", "second line", "third line"):
        send(page, text)
        expect(message_with_text(page, text)).to_have_count(1, timeout=WAIT_MS)
    expected = shown_ids(page)

    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    assert shown_ids(page) == expected
    expect(page.locator("#author")).to_have_value("carol")
    expect(message_with_text(page, "second line")).to_have_class(OWN)

    no_js = browser.new_context(java_script_enabled=False).new_page()
    no_js.goto(chat_server.url + "/", timeout=WAIT_MS)
    expect(no_js.locator("#inbox .message")).to_have_count(3)
    assert shown_ids(no_js) == expected
    expect(message_with_text(no_js, "third line").locator(".author")).to_have_text("carol")
    expect(no_js.locator("#load-older")).to_be_hidden()


def test_page_recovers_after_server_restart(chat_server: ChatServer, page: Page) -> None:
    open_chat(page, chat_server, name="dave")
    chat_server.post_message("before the restart", author="erin")
    expect(message_with_text(page, "before the restart")).to_have_count(1, timeout=WAIT_MS)

    chat_server.stop()
    wait_disconnected(page)

    chat_server.start()
    # Posted from outside right away: the page is most likely still waiting out its backoff, so
    # these arrive through the catch-up after it reconnects (or live, if it was quicker).
    missed = [f"missed while away {n}" for n in range(3)]
    for text in missed:
        chat_server.post_message(text, author="erin")

    expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=RECOVER_MS)
    for text in missed:
        expect(message_with_text(page, text)).to_have_count(1, timeout=RECOVER_MS)

    chat_server.post_message("after the restart", author="erin")
    expect(message_with_text(page, "after the restart")).to_have_count(1, timeout=WAIT_MS)
    ids = assert_ids_unique_and_ordered(page)
    assert ids == [m["id"] for m in chat_server.all_messages()]


def test_page_catches_up_on_everything_missed_while_offline(
    chat_server: ChatServer, browser: Browser
) -> None:
    context = browser.new_context()
    page = open_chat(context.new_page(), chat_server, name="heidi")
    chat_server.post_message("seen live", author="ivan")
    expect(message_with_text(page, "seen live")).to_have_count(1, timeout=WAIT_MS)
    catch_up_urls: list[str] = []
    page.on(
        "request",
        lambda request: catch_up_urls.append(request.url) if "after=" in request.url else None,
    )

    # Offline, the page cannot reconnect, so these can only reach it through the catch-up,
    # and more of them than one catch-up page holds.
    context.set_offline(True)
    wait_disconnected(page)
    missed = 250
    for n in range(missed):
        chat_server.post_message(f"missed {n:03d}", author="ivan")
    context.set_offline(False)

    expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=RECOVER_MS)
    expect(page.locator("#inbox .message")).to_have_count(missed + 1, timeout=RECOVER_MS)
    ids = assert_ids_unique_and_ordered(page)
    assert ids == [m["id"] for m in chat_server.all_messages()]
    assert len(catch_up_urls) >= 2, catch_up_urls
    assert all("limit=200" in url for url in catch_up_urls), catch_up_urls


def test_message_typed_while_disconnected_is_delivered_once(
    chat_server: ChatServer, page: Page
) -> None:
    open_chat(page, chat_server, name="frank")
    chat_server.stop()
    wait_disconnected(page)

    text = "typed while the server was down"
    send(page, text)
    pending = page.locator("#outbox .pending-message", has_text=text)
    expect(pending).to_have_count(1)
    expect(message_with_text(page, text)).to_have_count(0)

    chat_server.start()
    expect(message_with_text(page, text)).to_have_count(1, timeout=RECOVER_MS)
    expect(pending).to_have_count(0, timeout=WAIT_MS)
    expect(message_with_text(page, text)).to_have_class(OWN)

    stored = [m for m in chat_server.all_messages() if m["body"] == text]
    assert len(stored) == 1, stored
    assert stored[0]["author"] == "frank"
    assert_ids_unique_and_ordered(page)
    # Still once after a reload: nothing was left in the outbox to send again.
    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    expect(page.locator("#outbox > *")).to_have_count(0)
    expect(message_with_text(page, text)).to_have_count(1)
    assert len([m for m in chat_server.all_messages() if m["body"] == text]) == 1


@pytest.mark.parametrize(
    "chat_server_env", [{"CHAT_SOCKET_RATE": "4", "CHAT_SOCKET_BURST": "2"}], ids=["tight_limit"]
)
def test_queued_messages_go_out_in_order_under_the_rate_limit(
    chat_server: ChatServer, page: Page
) -> None:
    open_chat(page, chat_server, name="jo")
    chat_server.stop()
    wait_disconnected(page)
    texts = [f"queued {n}" for n in range(8)]
    for text in texts:
        send(page, text)
    expect(page.locator("#outbox .pending-message")).to_have_count(len(texts))

    chat_server.start()
    expect(page.locator("#inbox .message")).to_have_count(len(texts), timeout=RECOVER_MS)
    expect(page.locator("#outbox > *")).to_have_count(0, timeout=WAIT_MS)
    assert [m["body"] for m in chat_server.all_messages()] == texts
    assert_ids_unique_and_ordered(page)
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")


def test_outbox_survives_closing_the_page_while_offline(
    chat_server: ChatServer, browser: Browser
) -> None:
    context = browser.new_context()
    page = open_chat(context.new_page(), chat_server, name="grace")
    chat_server.stop()
    wait_disconnected(page)
    text = "queued in localStorage"
    send(page, text)
    expect(page.locator("#outbox .pending-message", has_text=text)).to_have_count(1)
    page.close()

    chat_server.start()
    again = context.new_page()
    again.goto(chat_server.url + "/", timeout=WAIT_MS)
    expect(message_with_text(again, text)).to_have_count(1, timeout=RECOVER_MS)
    expect(again.locator("#outbox > *")).to_have_count(0, timeout=WAIT_MS)
    expect(message_with_text(again, text)).to_have_class(OWN)
    assert [m["author"] for m in chat_server.all_messages() if m["body"] == text] == ["grace"]


def test_load_older_reveals_history_in_order(chat_server: ChatServer, page: Page) -> None:
    total = 130
    for n in range(1, total + 1):
        chat_server.post_message(f"seeded message {n:03d}", author="seed")
    stored_ids = [m["id"] for m in chat_server.all_messages()]
    assert len(stored_ids) == total

    open_chat(page, chat_server)
    first_ids = assert_ids_unique_and_ordered(page)
    assert first_ids, "the page shows no messages"
    assert first_ids == stored_ids[-len(first_ids) :], "the page must show the newest messages"
    assert len(first_ids) < total
    # Newest at the bottom, scrolled there.
    expect(message_with_text(page, f"seeded message {total:03d}")).to_be_in_viewport()

    older = page.locator("#load-older")
    for _ in range(total):  # bounded: each click must reveal at least one message
        if not older.is_visible():
            break
        before = shown_ids(page)
        anchor = page.locator(f"#m{before[0]}")
        older.scroll_into_view_if_needed()  # as the reader would, and as click() does anyway
        top_before = anchor.evaluate("el => el.getBoundingClientRect().top")
        older.click()
        expect(page.locator("#inbox .message")).not_to_have_count(len(before), timeout=WAIT_MS)
        expect(older).to_be_enabled(timeout=WAIT_MS)
        top_after = anchor.evaluate("el => el.getBoundingClientRect().top")
        assert abs(top_after - top_before) <= 2, "loading older messages moved the reader"
        assert_ids_unique_and_ordered(page)
    else:
        pytest.fail("#load-older never disappeared")

    assert shown_ids(page) == stored_ids
    expect(message_with_text(page, "seeded message 001")).to_have_count(1)


def test_no_console_errors_or_csp_violations_in_normal_use(
    chat_server: ChatServer, browser: Browser, console_problems: ConsoleProblems
) -> None:
    for n in range(60):
        chat_server.post_message(f"history https://example.org/{n} www.example.com", author="ivy")
    context = browser.new_context()
    page = console_problems.watch(context.new_page())
    response = page.goto(chat_server.url + "/", timeout=WAIT_MS)
    assert response is not None
    assert response.ok
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp, f"the page ships no strict CSP: {csp!r}"

    open_chat(page, chat_server, name="judy")
    send(page, "a message with a link https://example.org/path?q=1")
    expect(message_with_text(page, "example.org/path")).to_have_count(1, timeout=WAIT_MS)
    expect(message_with_text(page, "example.org/path").locator("a")).to_have_attribute(
        "href", "https://example.org/path?q=1"
    )
    hostile = "<img src=x onerror=\"console.error('injected')\"><script>alert(1)</script>"
    send(page, hostile)
    expect(message_with_text(page, "<script>alert(1)</script>")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#inbox img, #inbox script")).to_have_count(0)
    if page.locator("#load-older").is_visible():
        count = page.locator("#inbox .message").count()
        page.click("#load-older")
        expect(page.locator("#inbox .message")).not_to_have_count(count, timeout=WAIT_MS)
    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    assert console_problems.problems == []
