from __future__ import annotations

import time

import pytest

from chat.auth.principal import Account
from chat.rendering import MessageRenderer, create_environment, linkify
from chat.resources import templates_dir
from tests.support.html_check import assert_only_safe_links, inspect_html
from tests.support.xss import XSS_PAYLOADS


def links(text: str) -> list[str | None]:
    return [attrs.get("href") for tag, attrs in inspect_html(str(linkify(text))).tags]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see http://example.com now", ["http://example.com"]),
        ("see https://example.com/a?b=c&d=e#f.", ["https://example.com/a?b=c&d=e#f"]),
        ("bare www.example.com, ok", ["http://www.example.com"]),
        (
            "(see https://en.wikipedia.org/wiki/Foo_(bar))",
            ["https://en.wikipedia.org/wiki/Foo_(bar)"],
        ),
        ("end https://x.org/path!?", ["https://x.org/path"]),
        ("HTTP://UPPER.EXAMPLE", ["HTTP://UPPER.EXAMPLE"]),
        ("two http://a.io and www.b.io", ["http://a.io", "http://www.b.io"]),
        ("ftp://files.example javascript:alert(1) mailto:x@y", []),
        ("http:// nothing", []),
        ("www. nothing", []),
        ("xhttp://glued.example", []),
        # Found by the property tests: a www. host is linked as such, whatever follows.
        ("www.http://0 x", ["http://www.http://0"]),
        ("just www. here", []),
        ("www.", []),
    ],
)
def test_linkify_finds_links(text: str, expected: list[str]) -> None:
    assert links(text) == expected


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_linkify_never_injects_markup(payload: str) -> None:
    assert_only_safe_links(str(linkify(payload)), payload)


def test_xss_corpus_is_large_enough() -> None:
    assert len(XSS_PAYLOADS) >= 25


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_message_fragment_escapes_body_and_author(payload: str) -> None:
    renderer = MessageRenderer(create_environment(templates_dir()))
    html = str(
        renderer.render(
            message_id=7,
            body=payload,
            author=payload,
            created_at="2026-01-02T03:04:05.000000Z",
            client_id=payload[:64],
        )
    )
    inspection = inspect_html(html)
    tags = [tag for tag, _ in inspection.tags]
    assert tags[:5] == ["div", "div", "span", "span", "time"]  # the guest's name, marked
    assert inspection.tags[3][1] == {"class": "guest-tag"}
    assert tags[5] == "div"
    assert all(tag == "a" for tag in tags[6:])
    assert inspection.tags[0][1] == {
        "class": "message",
        "id": "m7",
        "data-id": "7",
        "data-client-id": payload[:64],  # an attribute value, whatever it holds
    }
    assert payload in inspection.visible_text
    assert inspection.visible_text.count(payload) == 2  # author and body, verbatim


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_a_signed_in_authors_names_are_escaped_and_not_marked_guest(payload: str) -> None:
    renderer = MessageRenderer(create_environment(templates_dir()))
    user = Account(id=3, username="ada", display_name=payload, role="member")
    html = str(
        renderer.render(
            message_id=8,
            body="hello",
            author="typed by the client, ignored",
            created_at="2026-01-02T03:04:05.000000Z",
            user=user,
        )
    )
    inspection = inspect_html(html)
    tags = [tag for tag, _ in inspection.tags]
    assert tags == ["div", "div", "span", "time", "div"]
    assert inspection.tags[0][1] == {
        "class": "message",
        "id": "m8",
        "data-id": "8",
        "data-user-id": "3",
    }
    assert inspection.tags[2][1] == {"class": "author", "title": "@ada"}
    assert payload in inspection.visible_text
    assert "ignored" not in inspection.visible_text


@pytest.mark.parametrize(
    "body",
    [
        "http://" + "a" * 60_000,
        "www." * 15_000,
        "http://x.com/" + ")" * 60_000,
        "http://x.com/" + ".," * 30_000,
        ("http://" + "(" * 10) * 3_000,
        "h" + "ttp://" * 10_000,
        "&" * 60_000,
        ("www.a" + " " * 5) * 6_000,
    ],
)
def test_linkify_is_linear_on_pathological_input(body: str) -> None:
    started = time.perf_counter()
    html = str(linkify(body))
    elapsed = time.perf_counter() - started
    assert html  # rendered completely
    # A backtracking pattern needs seconds to minutes here; linear code needs milliseconds.
    # The bound is generous so a busy CI machine cannot make it flaky.
    assert elapsed < 0.5, f"{elapsed:.3f}s for {len(body)} characters"
