"""The XSS corpus through the socket, the API and the page, in a real browser under the CSP:
every payload is shown verbatim, nothing executes, no markup or attribute is injected."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser, Dialog, expect
from websockets.sync.client import connect

from tests.support.xss import XSS_PAYLOADS

from .conftest import ConsoleProblems
from .pages import WAIT_MS, open_chat
from .server import ChatServer

pytestmark = pytest.mark.e2e

# What a message fragment may contain; anything else in #inbox was injected.
ALLOWED_TAGS = {"DIV", "SPAN", "TIME", "A"}
INSPECT_INBOX = """() => {
  const nodes = [...document.querySelectorAll('#inbox .message *')];
  return {
    tags: [...new Set(nodes.map(n => n.tagName))],
    handlers: nodes.flatMap(n => [...n.attributes].map(a => a.name))
                   .filter(name => name.startsWith('on')),
    hrefs: [...document.querySelectorAll('#inbox a')].map(a => a.getAttribute('href')),
    bodies: [...document.querySelectorAll('#inbox .message .body')].map(b => b.textContent),
    authors: [...document.querySelectorAll('#inbox .message .author')].map(a => a.textContent),
    pwned: window.__pwned === true,
  };
}"""


def send_over_socket(server: ChatServer, payloads: list[str]) -> None:
    with connect(server.ws_url, additional_headers={"Origin": server.url}, open_timeout=5) as ws:
        for payload in payloads:
            ws.send(json.dumps({"body": payload, "author": payload[:64]}))
            echo = json.loads(ws.recv(timeout=5))
            assert echo.get("body") == payload, echo


def test_hostile_messages_render_as_text_and_nothing_runs(
    chat_server: ChatServer, browser: Browser, console_problems: ConsoleProblems
) -> None:
    half = len(XSS_PAYLOADS) // 2
    for payload in XSS_PAYLOADS[:half]:  # stored before the page loads: server-rendered
        chat_server.post_message(payload, author=payload[:64])

    dialogs: list[str] = []
    page = console_problems.watch(browser.new_context().new_page())

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    open_chat(page, chat_server)
    send_over_socket(chat_server, XSS_PAYLOADS[half:])  # arrive live, inserted by the client
    expect(page.locator("#inbox .message")).to_have_count(len(XSS_PAYLOADS), timeout=WAIT_MS)

    seen = page.evaluate(INSPECT_INBOX)
    assert seen["bodies"] == XSS_PAYLOADS
    assert seen["authors"] == [" ".join(p[:64].split()) or "anonymous" for p in XSS_PAYLOADS]
    assert set(seen["tags"]) <= ALLOWED_TAGS, seen["tags"]
    assert seen["handlers"] == []
    assert all(href.startswith(("http://", "https://")) for href in seen["hrefs"]), seen["hrefs"]
    assert not seen["pwned"]

    page.reload()  # and once more, all of it server-rendered
    expect(page.locator("#inbox .message")).to_have_count(len(XSS_PAYLOADS), timeout=WAIT_MS)
    again = page.evaluate(INSPECT_INBOX)
    assert again["bodies"] == XSS_PAYLOADS
    assert set(again["tags"]) <= ALLOWED_TAGS
    assert dialogs == []
    assert console_problems.problems == []
