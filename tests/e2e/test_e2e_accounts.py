"""Accounts in Chromium: registering and signing in and out, members and guests chatting, the
pages without JavaScript, and a page whose sign-in is revoked while it is open."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, WebSocket, expect

from .conftest import ConsoleProblems
from .pages import (
    OWN,
    PASSWORD,
    WAIT_MS,
    message_with_text,
    open_chat,
    register_by_api,
    send,
    shown_identity,
    sign_in,
)
from .server import ChatServer

pytestmark = pytest.mark.e2e

# After a revocation, how long the test watches for sockets a reconnect loop would open. The
# client's first reconnect would come within about a second (backoff from 0.5 s); four give
# room for the reload and a few backoff rounds.
NO_RECONNECT_WINDOW_MS = 4_000


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Browser contexts opened by `browser.new_context` in a test, closed after it."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def new_context(browser: Browser, contexts: list[BrowserContext], **options: Any) -> BrowserContext:
    context = browser.new_context(**options)
    contexts.append(context)
    return context


def test_register_sign_out_and_sign_in(
    chat_server: ChatServer,
    browser: Browser,
    contexts: list[BrowserContext],
    console_problems: ConsoleProblems,
) -> None:
    page = console_problems.watch(new_context(browser, contexts).new_page())
    page.goto(chat_server.url + "/", timeout=WAIT_MS)
    expect(shown_identity(page).locator(".whoami-guest")).to_have_text("guest")
    with page.expect_navigation(timeout=WAIT_MS):
        shown_identity(page).get_by_role("link", name="Register").click()
    page.fill("#username", "ada")
    page.fill("#display_name", "Ada Lovelace")
    page.fill("#password", "short")
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("#register-form [type=submit]")
    expect(page.locator("#form-error")).to_contain_text("at least 8 characters")
    expect(page.locator("#username")).to_have_value("ada")
    expect(page.locator("#password")).to_have_value("")
    page.fill("#password", PASSWORD)
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("#register-form [type=submit]")

    assert page.url == chat_server.url + "/"
    expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    identity = shown_identity(page)
    expect(identity.locator(".whoami-name")).to_have_text("Ada Lovelace")
    expect(identity.locator(".whoami-username")).to_have_text("@ada")
    expect(page.locator("#author")).to_have_count(0)
    expect(page.locator("body")).to_have_attribute("data-username", "ada")

    with page.expect_navigation(timeout=WAIT_MS):
        identity.get_by_role("button", name="Sign out").click()
    assert page.url == chat_server.url + "/login"
    expect(shown_identity(page).locator(".whoami-guest")).to_be_visible()

    page.fill("#username", "ada")
    page.fill("#password", "not the password")
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("#login-form [type=submit]")
    expect(page.locator("#form-error")).to_have_text("The username or password is not right.")
    sign_in(page, chat_server, "ada", next_path="/account")
    expect(page.locator("h1")).to_have_text("Ada Lovelace")
    expect(page.locator("#account-username")).to_have_text("@ada")
    # The two refused forms came back as 400 and 401 pages, which Chromium reports; no others.
    refused_forms = re.compile(r"status of (400|401) .*/(register|login)'")
    assert [p for p in console_problems.problems if not refused_forms.search(p)] == []
    assert len(console_problems.problems) == 2, console_problems.problems


def test_two_members_and_a_guest_chat(
    chat_server: ChatServer,
    browser: Browser,
    contexts: list[BrowserContext],
    console_problems: ConsoleProblems,
) -> None:
    ada_context, bob_context = new_context(browser, contexts), new_context(browser, contexts)
    ada_user = register_by_api(ada_context, chat_server, "ada", "Ada")
    bob_user = register_by_api(bob_context, chat_server, "bob", "Bob")
    ada = open_chat(console_problems.watch(ada_context.new_page()), chat_server)
    bob = open_chat(console_problems.watch(bob_context.new_page()), chat_server)
    guest = open_chat(
        console_problems.watch(new_context(browser, contexts).new_page()), chat_server, name="cat"
    )

    # The same words from two members: each is "own" only for its author, by user id.
    send(ada, "same words")
    expect(message_with_text(bob, "same words")).to_have_count(1, timeout=WAIT_MS)
    send(bob, "same words")
    send(guest, "hello from a guest")
    for page in (ada, bob, guest):
        expect(message_with_text(page, "same words")).to_have_count(2, timeout=WAIT_MS)
        expect(message_with_text(page, "hello from a guest")).to_have_count(1, timeout=WAIT_MS)
        expect(page.locator("#outbox > *")).to_have_count(0, timeout=WAIT_MS)

    for page, me, other in ((ada, ada_user, bob_user), (bob, bob_user, ada_user)):
        mine = page.locator(f'#inbox .message[data-user-id="{me["id"]}"]')
        theirs = page.locator(f'#inbox .message[data-user-id="{other["id"]}"]')
        expect(mine).to_have_class(OWN)
        expect(theirs).not_to_have_class(OWN)
        expect(theirs.locator(".author")).to_have_text(other["display_name"])
        expect(theirs.locator(".author")).to_have_attribute("title", f"@{other['username']}")
        expect(theirs.locator(".guest-tag")).to_have_count(0)
        from_guest = message_with_text(page, "hello from a guest")
        expect(from_guest).not_to_have_class(OWN)
        expect(from_guest.locator(".author")).to_have_text("cat")
        expect(from_guest.locator(".guest-tag")).to_have_text("guest")
        expect(page.locator("#inbox .message.own")).to_have_count(1)

    expect(message_with_text(guest, "hello from a guest")).to_have_class(OWN)
    expect(guest.locator("#inbox .message.own")).to_have_count(1)
    stored = [
        (m["author"], (m["user"] or {}).get("id"), m["body"]) for m in chat_server.all_messages()
    ]
    assert stored == [
        ("Ada", ada_user["id"], "same words"),
        ("Bob", bob_user["id"], "same words"),
        ("cat", None, "hello from a guest"),
    ]
    assert console_problems.problems == []


def test_a_guest_cannot_take_a_members_name(
    chat_server: ChatServer, browser: Browser, contexts: list[BrowserContext]
) -> None:
    register_by_api(new_context(browser, contexts), chat_server, "ada", "Ada Lovelace")
    guest = open_chat(new_context(browser, contexts).new_page(), chat_server, name="ADA LOVELACE")

    send(guest, "it is really me")
    expect(guest.locator("#notice")).to_contain_text("is the name of an account", timeout=WAIT_MS)
    expect(guest.locator("#message")).to_have_value("it is really me")  # nothing is lost
    expect(guest.locator("#outbox > *")).to_have_count(0)
    expect(guest.locator("#author")).to_be_focused()
    assert chat_server.all_messages() == []

    guest.fill("#author", "not ada")
    guest.press("#message", "Enter")
    expect(message_with_text(guest, "it is really me")).to_have_count(1, timeout=WAIT_MS)
    assert [m["author"] for m in chat_server.all_messages()] == ["not ada"]


def test_sign_in_and_post_without_javascript(
    chat_server: ChatServer, browser: Browser, contexts: list[BrowserContext]
) -> None:
    register_by_api(new_context(browser, contexts), chat_server, "dee", "Dee")
    page = new_context(browser, contexts, java_script_enabled=False).new_page()
    page.goto(chat_server.url + "/", timeout=WAIT_MS)
    with page.expect_navigation(timeout=WAIT_MS):
        shown_identity(page).get_by_role("link", name="Sign in").click()
    page.fill("#username", "dee")
    page.fill("#password", PASSWORD)
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("#login-form [type=submit]")
    assert page.url == chat_server.url + "/"
    expect(shown_identity(page).locator(".whoami-name")).to_have_text("Dee")
    expect(page.locator("#author")).to_have_count(0)

    page.fill("#message", "posted by a member, no script")
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("#messageform [type=submit]")
    posted = message_with_text(page, "posted by a member, no script")
    expect(posted).to_have_count(1)
    expect(posted.locator(".author")).to_have_text("Dee")
    expect(posted.locator(".guest-tag")).to_have_count(0)

    with page.expect_navigation(timeout=WAIT_MS):
        shown_identity(page).get_by_role("button", name="Sign out").click()
    assert page.url == chat_server.url + "/login"
    expect(shown_identity(page).locator(".whoami-guest")).to_be_visible()


@pytest.mark.parametrize(
    "chat_server_env",
    [{}, {"CHAT_GUEST_ACCESS": "none"}],
    ids=["guests-post", "guests-shut-out"],
)
def test_signing_out_everywhere_signs_out_the_other_page_once(
    chat_server: ChatServer,
    chat_server_env: dict[str, str],
    browser: Browser,
    contexts: list[BrowserContext],
) -> None:
    laptop_context, phone_context = new_context(browser, contexts), new_context(browser, contexts)
    register_by_api(laptop_context, chat_server, "eli", "Eli")
    phone = phone_context.new_page()
    opened: list[WebSocket] = []

    # A def, not `opened.append`: Playwright cannot register a builtin method as a handler.
    def on_websocket(socket: WebSocket) -> None:
        opened.append(socket)

    phone.on("websocket", on_websocket)
    sign_in(phone, chat_server, "eli")  # the sign-in page itself opens no socket
    expect(phone.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    assert len(opened) == 1

    laptop = laptop_context.new_page()
    laptop.goto(chat_server.url + "/account", timeout=WAIT_MS)
    with laptop.expect_navigation(timeout=WAIT_MS):
        laptop.click("#logout-everywhere-form [type=submit]")
    assert laptop.url == chat_server.url + "/login"

    # The phone's socket is closed (4401); the page says so, then reloads once as it now is.
    shut_out = chat_server_env.get("CHAT_GUEST_ACCESS") == "none"
    if shut_out:
        phone.wait_for_url(chat_server.url + "/login?next=%2F", timeout=WAIT_MS)
    else:
        expect(phone.locator(".whoami-guest")).to_be_visible(timeout=WAIT_MS)
        assert phone.locator("body").get_attribute("data-user-id") is None
        expect(phone.locator("#status")).to_have_attribute(
            "data-state", "connected", timeout=WAIT_MS
        )
    # A loop would open socket after socket; the reloaded page opens one at most (a guest's).
    phone.wait_for_timeout(NO_RECONNECT_WINDOW_MS)
    assert len(opened) == (1 if shut_out else 2), [ws.url for ws in opened]
    assert phone_context.request.get(chat_server.url + "/api/me").status == 401


def test_the_signed_out_notice_before_the_reload(
    chat_server: ChatServer, browser: Browser, contexts: list[BrowserContext]
) -> None:
    context = new_context(browser, contexts)
    register_by_api(context, chat_server, "fin", "Fin")
    page = open_chat(context.new_page(), chat_server)
    # Reloading would hide the notice; hold it off to read what the page says first.
    page.evaluate("sessionStorage.setItem('chat.signedOutReloadAt', String(Date.now()))")
    response = context.request.post(chat_server.url + "/api/auth/logout-everywhere")
    assert response.status == 204
    notice = page.locator("#notice")
    expect(notice).to_contain_text("You were signed out.", timeout=WAIT_MS)
    expect(notice.get_by_role("link", name="Sign in")).to_have_attribute("href", "/login?next=/")
    expect(page.locator("#status")).to_have_attribute("data-state", "offline")
    expect(page.locator("#status")).to_have_text("signed out")
