"""The server-rendered page and the form that works without JavaScript."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.html_check import inspect_html
from tests.support.live import LiveServer
from tests.support.xss import XSS_PAYLOADS


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as client:
        yield client


def xsrf_from(html: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', html)
    assert match, "the form has no _xsrf field"
    return match.group(1)


def form_post(client: httpx.Client, **fields: str) -> httpx.Response:
    page = client.get("/")
    return client.post("/a/message/new", data={"_xsrf": xsrf_from(page.text), **fields})


def messages_in(html: str) -> list[str]:
    return re.findall(r'<div class="message" id="m(\d+)"', html)


def test_page_renders_newest_messages_server_side(client: httpx.Client, server: LiveServer) -> None:
    for n in range(server.settings.page_messages + 3):
        client.post("/api/messages", json={"body": f"line {n}"})
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    ids = [int(i) for i in messages_in(page.text)]
    assert len(ids) == server.settings.page_messages
    assert ids == sorted(ids)
    assert f"line {server.settings.page_messages + 2}" in page.text
    assert 'id="load-older"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_form_posts_and_redirects(client: httpx.Client) -> None:
    response = form_post(client, body="no js needed", author="grace", next="/")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    page = client.get("/")
    assert "no js needed" in page.text
    assert 'value="grace"' in page.text  # the name is remembered for the next post


def test_form_without_csrf_token_is_refused(client: httpx.Client) -> None:
    client.get("/")
    response = client.post("/a/message/new", data={"body": "forged", "_xsrf": "wrong"})
    assert response.status_code == 403
    assert 'id="form-error"' in response.text
    assert ">forged</textarea>" in response.text  # what was typed is kept, escaped
    fresh = httpx.post(f"{client.base_url}/a/message/new", data={"body": "forged"})
    assert fresh.status_code == 403
    assert client.get("/api/messages").json()["messages"] == []


@pytest.mark.parametrize("target", ["//evil.example/", "http://evil.example/", "javascript:x"])
def test_next_only_redirects_locally(client: httpx.Client, target: str) -> None:
    response = form_post(client, body="hi", next=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_rate_limited_form_keeps_the_text(make_server: ServerFactory) -> None:
    server = make_server(post_rate_per_second=0.01, post_rate_burst=1)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert form_post(client, body="first").status_code == 303
        refused = form_post(client, body="second, too soon")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "second, too soon</textarea>" in refused.text
        assert [m["body"] for m in client.get("/api/messages").json()["messages"]] == ["first"]


def test_invalid_form_shows_the_error_and_keeps_the_text(client: httpx.Client) -> None:
    too_long = "z" * 2001
    response = form_post(client, body=too_long)
    assert response.status_code == 400
    assert 'id="form-error"' in response.text
    assert too_long in response.text
    empty = form_post(client, body="   ")
    assert empty.status_code == 400
    assert client.get("/api/messages").json()["messages"] == []


@pytest.mark.parametrize("payload", XSS_PAYLOADS[:12])
def test_hostile_bodies_render_as_text(client: httpx.Client, payload: str) -> None:
    client.post("/api/messages", json={"body": payload, "author": payload})
    page = client.get("/").text
    inbox = page[page.index('id="inbox"') : page.index('id="outbox"')]
    for tag, attrs in inspect_html(inbox).tags:
        assert tag in {"div", "span", "time", "a"}, tag
        assert not any(name.startswith("on") for name in attrs), attrs
        if tag == "a":
            assert (attrs.get("href") or "").startswith(("http://", "https://"))
    assert "<script>alert(1)</script>" not in inbox
