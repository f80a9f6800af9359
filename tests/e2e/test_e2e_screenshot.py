"""A realistic conversation at phone width, photographed.

The picture goes to a temporary file, so a test run leaves the checkout as it found it. The
README's docs/screenshot.png is regenerated on purpose with
`python -m pytest tests/e2e/test_e2e_screenshot.py --screenshot-to docs/screenshot.png`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from .pages import WAIT_MS, message_with_text, open_chat, send
from .server import ChatServer

pytestmark = pytest.mark.e2e

CONVERSATION = [
    ("ada", "Hi all! Is the release still planned for Friday?"),
    ("grace", "Yes, if the migration test passes on the staging copy this morning."),
    (None, "me: I'll run it before lunch and post the numbers here."),
    ("linus", "The changelog draft is at https://example.org/chat/releases/0.1 — comments welcome"),
    ("ada", "Looks good. Could we mention that the page works without JavaScript?"),
    (None, "me: Added. Also: messages typed offline are sent after the reconnect."),
    ("grace", "Nice, that was the bug from last week's demo"),
]


@pytest.fixture
def screenshot_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    chosen = request.config.getoption("--screenshot-to")
    return Path(chosen).resolve() if chosen else tmp_path / "screenshot.png"


def test_screenshot_of_a_conversation(
    chat_server: ChatServer, browser: Browser, screenshot_path: Path
) -> None:
    context = browser.new_context(
        viewport={"width": 400, "height": 760}, device_scale_factor=2, color_scheme="light"
    )
    try:
        page = context.new_page()
        open_chat(page, chat_server, name="sam")
        for author, text in CONVERSATION:
            if author is None:
                body = text.removeprefix("me: ")
                send(page, body)
                expect(message_with_text(page, body)).to_have_count(1, timeout=WAIT_MS)
            else:
                chat_server.post_message(text, author=author)
                expect(message_with_text(page, text[:30])).to_have_count(1, timeout=WAIT_MS)
        page.fill("#message", "See you at the standup")
        # Unfocused, so no caret or focus ring; the textarea's text still rasterizes in one of
        # two ways from run to run, the only change `git status` may show without a page change.
        page.locator("#message").blur()
        expect(page.locator("#inbox .message.own")).to_have_count(2)
        expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        # Real timestamps would change the image on every run; fixed ones keep the file stable
        # so a changed docs/screenshot.png in `git status` means the page looks different.
        page.eval_on_selector_all(
            "#inbox time",
            """els => els.forEach((el, i) => {
                el.textContent = `9:${String(41 + i).padStart(2, "0")} AM`;
            })""",
        )
        screenshot_path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot_path), animations="disabled", caret="hide")
    finally:
        context.close()
    assert screenshot_path.stat().st_size > 10_000
