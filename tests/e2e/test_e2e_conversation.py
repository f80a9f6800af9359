"""The conversation in the browser: reply, react, edit, delete, typing, and a notification on
a mention while the tab is hidden (live, and through the catch-up after a reconnect)."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from .conftest import ConsoleProblems
from .pages import RECOVER_MS, WAIT_MS, message_with_text, open_chat, register_by_api, send
from .server import ChatServer
from .test_e2e_rooms import HIDEABLE, set_hidden

pytestmark = pytest.mark.e2e

# Records every Notification the page shows (Chromium shows nothing headless).
RECORD_NOTIFICATIONS = """
window.__notifications = [];
const Original = window.Notification;
class Recorded extends Original {
  constructor(title, options) {
    super(title, options);
    const { body, tag } = options || {};
    window.__notifications.push({ title, body, tag });
  }
}
window.Notification = Recorded;
"""


def person(
    browser: Browser, server: ChatServer, username: str, **context_options: Any
) -> tuple[BrowserContext, Page]:
    context = browser.new_context(**context_options)
    register_by_api(context, server, username, username.capitalize())
    page = context.new_page()
    page.add_init_script(HIDEABLE)
    page.add_init_script(RECORD_NOTIFICATIONS)
    open_chat(page, server)
    return context, page


def act(page: Page, message: Locator, action: str) -> None:
    message.locator(".body").hover()
    toolbar = page.locator("#message-actions")
    expect(toolbar).to_be_visible(timeout=WAIT_MS)
    toolbar.locator(f'[data-action="{action}"]').click()


def stored(context: BrowserContext, server: ChatServer, message_id: str) -> dict[str, Any]:
    response = context.request.get(
        f"{server.url}/api/rooms/general/messages/{message_id}", timeout=WAIT_MS
    )
    assert response.ok, response.text()
    message: dict[str, Any] = response.json()["message"]
    return message


class Asked(NamedTuple):
    """Ada and Bob on the page; Ada asked a question, Bob sees it."""

    ada_context: BrowserContext
    ada: Page
    bob: Page
    question_at_bob: Locator


@pytest.fixture
def asked(chat_server: ChatServer, browser: Browser, console_problems: ConsoleProblems) -> Asked:
    ada_context, ada = person(browser, chat_server, "ada")
    _, bob = person(browser, chat_server, "bob")
    console_problems.watch(ada)
    console_problems.watch(bob)
    send(ada, "original question")
    question_at_bob = message_with_text(bob, "original question")
    expect(question_at_bob).to_have_count(1, timeout=WAIT_MS)
    return Asked(ada_context, ada, bob, question_at_bob)


def test_reply_and_react(
    chat_server: ChatServer, asked: Asked, console_problems: ConsoleProblems
) -> None:
    ada_context, ada, bob, question_at_bob = asked
    question_id = question_at_bob.get_attribute("data-id") or ""

    # Reply: the composer says to what; the answer quotes it, on both pages.
    act(bob, question_at_bob, "reply")
    expect(bob.locator("#reply-preview")).to_contain_text("original question")
    send(bob, "the answer")
    expect(bob.locator("#reply-preview")).to_be_hidden()
    for page in (ada, bob):
        answer = message_with_text(page, "the answer")
        expect(answer.locator(".reply-quote")).to_contain_text("original question", timeout=WAIT_MS)

    # React: a count on both pages, "mine" only on the reactor's.
    act(bob, question_at_bob, "react")
    bob.locator('#emoji-picker [data-emoji="👍"]').click()
    at_ada = message_with_text(ada, "original question").locator('.reaction[data-emoji="👍"]')
    at_bob = question_at_bob.locator('.reaction[data-emoji="👍"]')
    expect(at_ada.locator(".reaction-count")).to_have_text("1", timeout=WAIT_MS)
    expect(at_ada).not_to_have_class(re.compile(r"\bmine\b"))
    expect(at_bob).to_have_class(re.compile(r"\bmine\b"), timeout=WAIT_MS)
    assert [r["users"] for r in stored(ada_context, chat_server, question_id)["reactions"]]
    at_bob.click()  # taken back
    expect(at_ada).to_have_count(0, timeout=WAIT_MS)
    assert console_problems.problems == []


def test_edit_and_delete(asked: Asked, console_problems: ConsoleProblems) -> None:
    _, ada, bob, question_at_bob = asked

    # Edit: only the author is offered it; Enter saves, the page shows "edited".
    question_at_ada = message_with_text(ada, "original question")
    question_at_bob.locator(".body").hover()
    expect(bob.locator('#message-actions [data-action="edit"]')).to_be_hidden()
    expect(bob.locator('#message-actions [data-action="delete"]')).to_be_hidden()
    act(ada, question_at_ada, "edit")
    editor = question_at_ada.locator(".inline-editor textarea")
    expect(editor).to_be_focused()
    editor.fill("the question, edited")
    editor.press("Enter")
    for page in (ada, bob):
        edited = message_with_text(page, "the question, edited")
        expect(edited).to_have_count(1, timeout=WAIT_MS)
        expect(edited.locator(".edited")).to_have_count(1)

    # Up arrow in the empty composer edits one's last message; Esc leaves it as it was.
    send(ada, "a typo hree")
    expect(message_with_text(ada, "a typo hree")).to_have_count(1, timeout=WAIT_MS)
    ada.locator("#message").press("ArrowUp")
    editor = message_with_text(ada, "a typo hree").locator(".inline-editor textarea")
    expect(editor).to_be_focused()
    editor.press("Escape")
    expect(editor).to_have_count(0)
    ada.locator("#message").press("ArrowUp")
    editor.fill("a typo here")
    editor.press("Enter")
    expect(message_with_text(bob, "a typo here")).to_have_count(1, timeout=WAIT_MS)

    # Delete, after a confirmation: a tombstone on both pages.
    ada.once("dialog", lambda dialog: dialog.accept())
    act(ada, message_with_text(ada, "a typo here"), "delete")
    for page in (ada, bob):
        expect(page.locator("#inbox .message .tombstone")).to_have_count(1, timeout=WAIT_MS)
        expect(message_with_text(page, "a typo here")).to_have_count(0)
    assert console_problems.problems == []


def test_typing_is_shown_and_expires(chat_server: ChatServer, browser: Browser) -> None:
    _, ada = person(browser, chat_server, "ada")
    _, bob = person(browser, chat_server, "bob")
    bob.locator("#message").press_sequentially("hel")
    expect(ada.locator("#typing")).to_have_text("Bob is typing…", timeout=WAIT_MS)
    expect(bob.locator("#typing")).to_have_text("")
    # Nobody refreshes it: it goes by itself (expires_in is 7 s).
    expect(ada.locator("#typing")).to_have_text("", timeout=12_000)
    bob.locator("#message").press_sequentially("lo")
    expect(ada.locator("#typing")).to_have_text("Bob is typing…", timeout=WAIT_MS)
    bob.locator("#message").press("Enter")
    expect(message_with_text(ada, "hello")).to_have_count(1, timeout=WAIT_MS)
    expect(ada.locator("#typing")).to_have_text("")


def notifications(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("window.__notifications")
    return found


def test_mention_in_a_hidden_tab_notifies_once_live_and_after_a_reconnect(
    chat_server: ChatServer, browser: Browser
) -> None:
    ada_context, ada = person(
        browser, chat_server, "ada", permissions=["notifications"], base_url=chat_server.url
    )
    _, bob = person(browser, chat_server, "bob")
    send(bob, "@ada seen while you look")
    expect(message_with_text(ada, "seen while you look")).to_have_count(1, timeout=WAIT_MS)
    ada.wait_for_timeout(500)
    assert notifications(ada) == []  # visible: no notification

    set_hidden(ada, True)
    send(bob, "@ada look at this")
    expect(message_with_text(ada, "look at this")).to_have_count(1, timeout=WAIT_MS)
    ada.wait_for_function("window.__notifications.length === 1", timeout=WAIT_MS)
    assert "look at this" in notifications(ada)[0]["body"]

    # Away: the mention arrives through the catch-up after the reconnect, and only once.
    ada_context.set_offline(True)
    expect(ada.locator("#status")).not_to_have_attribute("data-state", "connected")
    send(bob, "@ada while you were away")
    expect(message_with_text(bob, "while you were away")).to_have_count(1, timeout=WAIT_MS)
    ada_context.set_offline(False)
    expect(message_with_text(ada, "while you were away")).to_have_count(1, timeout=RECOVER_MS)
    ada.wait_for_function("window.__notifications.length === 2", timeout=WAIT_MS)
    ada.wait_for_timeout(1000)
    bodies = [n["body"] for n in notifications(ada)]
    assert len(bodies) == 2, bodies
    assert "while you were away" in bodies[1]


def test_an_admin_may_delete_anyones_message(
    chat_server: ChatServer, browser: Browser, console_problems: ConsoleProblems
) -> None:
    _, ada = person(browser, chat_server, "ada")  # the first account, from loopback: an admin
    _, bob = person(browser, chat_server, "bob")
    console_problems.watch(ada)
    send(bob, "spam spam spam")
    spam_at_ada = message_with_text(ada, "spam spam spam")
    expect(spam_at_ada).to_have_count(1, timeout=WAIT_MS)
    ada.once("dialog", lambda dialog: dialog.accept())
    act(ada, spam_at_ada, "delete")
    for page in (ada, bob):
        expect(page.locator("#inbox .message .tombstone")).to_have_count(1, timeout=WAIT_MS)
        expect(message_with_text(page, "spam spam spam")).to_have_count(0)
    assert console_problems.problems == []
