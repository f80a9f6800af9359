from __future__ import annotations

import pytest

from chat.security import (
    bearer_token_matches,
    csrf_token_matches,
    new_csrf_token,
    origin_allowed,
    safe_next_path,
)

HOST = "chat.example:8080"


def allowed(
    origin: str | None,
    *,
    host: str | None = HOST,
    scheme: str = "ws",
    extra: frozenset[str] = frozenset(),
    allow_missing: bool = True,
) -> bool:
    return origin_allowed(
        origin, host=host, scheme=scheme, allowed=extra, allow_missing=allow_missing
    )


@pytest.mark.parametrize(
    "origin",
    ["http://chat.example:8080", "HTTP://Chat.Example:8080", "http://chat.example:8080/"],
)
def test_same_origin_is_allowed(origin: str) -> None:
    assert allowed(origin)


def test_default_ports_are_equivalent() -> None:
    assert allowed("https://chat.example", host="chat.example", scheme="wss")
    assert allowed("https://chat.example:443", host="chat.example", scheme="wss")
    assert allowed("http://chat.example", host="chat.example:80", scheme="ws")


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "file://",
        "file:///etc/passwd",
        "http://chat.example:8080.evil.example",
        "http://evilchat.example:8080",
        "http://chat.example.evil.example:8080",
        "http://chat.example:8081",
        "http://chat.example",
        "https://chat.example:8080",
        "http://user@chat.example:8080",
        "http://chat.example:8080/path",
        "chat.example:8080",
        "",
        "http://chat.example:99999",
    ],
)
def test_foreign_and_lookalike_origins_are_refused(origin: str) -> None:
    assert not allowed(origin)


def test_allow_list_matches_whole_origins() -> None:
    extra = frozenset({"https://app.example"})
    assert allowed("https://app.example", extra=extra)
    assert allowed("https://app.example:443", extra=extra)
    assert not allowed("http://app.example", extra=extra)
    assert not allowed("https://app.example.evil", extra=extra)


def test_missing_origin_follows_configuration() -> None:
    assert allowed(None)
    assert not allowed(None, allow_missing=False)


def test_csrf_tokens() -> None:
    token = new_csrf_token()
    assert len(token) >= 32
    assert csrf_token_matches(token, token)
    assert not csrf_token_matches(token, new_csrf_token())
    assert not csrf_token_matches(None, token)
    assert not csrf_token_matches(token, "")


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/", "/"),
        ("/?page=2", "/?page=2"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("http://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("relative", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("/a\\b", "/"),
    ],
)
def test_next_only_allows_local_paths(candidate: str | None, expected: str) -> None:
    assert safe_next_path(candidate) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer tok-en.1", True),
        ("bearer tok-en.1", True),
        ("BEARER  tok-en.1 ", True),
        ("Bearer tok-en.2", False),
        ("Bearer tok-en.1x", False),
        ("Bearer tok-en.", False),
        ("Bearer ", False),
        ("Basic tok-en.1", False),
        ("tok-en.1", False),
        ("Bearer tök-en.1", False),
        ("", False),
        (None, False),
    ],
)
def test_bearer_tokens(header: str | None, expected: bool) -> None:
    assert bearer_token_matches(header, "tok-en.1") is expected
