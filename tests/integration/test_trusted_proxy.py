"""Trusted reverse-proxy sign-in (CHAT_PROXY_USER_HEADER, CHAT_TRUSTED_PROXIES) on a real uvicorn.

The tests connect from loopback addresses, so "the proxy" is this process: trusted when
CHAT_TRUSTED_PROXIES covers 127.0.0.1, an impostor when it names 10.0.0.0/8. Guests may not
read on these servers, so a socket that opens proves who it was opened for.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chat.settings import Settings
from tests.support.live import LiveServer
from tests.support.process import ChatServer, free_port
from tests.support.ws import recv_json, send_json

HEADER = "X-Forwarded-User"
MIDDLEWARE_LOGGER = "chat.auth.middleware"


def proxy_settings(settings: Settings, trusted: str) -> Settings:
    return settings.with_overrides(
        proxy_user_header=HEADER, trusted_proxies=(trusted,), guest_access="none"
    )


@pytest.fixture
def trusting_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(proxy_settings(settings, "127.0.0.1/32")) as server:
        yield server


def me(server: LiveServer, headers: dict[str, str], **client: Any) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=5.0, **client) as http:
        return http.get("/api/me", headers=headers)


def socket_user(server: LiveServer, headers: dict[str, str]) -> dict[str, Any]:
    """Open the socket with these headers, post, and return the `user` of the echo."""
    with connect(
        server.ws_url, additional_headers={"Origin": server.origin, **headers}, open_timeout=5
    ) as ws:
        send_json(ws, {"body": "via the proxy", "client_id": f"c-{secrets.token_hex(4)}"})
        user: dict[str, Any] = recv_json(ws)["user"]
        return user


def socket_refusal(server: LiveServer, headers: dict[str, str]) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws_url, additional_headers={"Origin": server.origin, **headers}).close()
    return refused.value.response.status_code


def test_a_trusted_proxy_signs_people_in_over_http_and_the_socket(
    trusting_server: LiveServer,
) -> None:
    first = me(trusting_server, {HEADER: "Grace"})
    assert first.status_code == 200, first.text
    assert first.json()["signed_in_with"] == "proxy"
    user = first.json()["user"]
    assert (user["username"], user["role"]) == ("grace", "member")  # made on first sight
    assert me(trusting_server, {HEADER: "grace"}).json()["user"]["id"] == user["id"]
    assert socket_user(trusting_server, {HEADER: "grace"})["id"] == user["id"]
    # Without the header nobody is signed in.
    assert me(trusting_server, {}).status_code == 401
    assert socket_refusal(trusting_server, {}) == 401


def test_an_untrusted_sender_is_ignored_and_logged_once_per_address(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger=MIDDLEWARE_LOGGER),
        LiveServer(proxy_settings(settings, "10.0.0.0/8")) as server,
    ):
        for _ in range(3):
            assert me(server, {HEADER: "grace"}).status_code == 401
        assert socket_refusal(server, {HEADER: "grace"}) == 401
        # Another address (all of 127/8 is this machine) gets its own one line.
        other = httpx.HTTPTransport(local_address="127.0.0.2")
        assert me(server, {HEADER: "grace"}, transport=other).status_code == 401
        assert me(server, {HEADER: "grace"}, transport=other).status_code == 401
    warnings = [r.getMessage() for r in caplog.records if r.name == MIDDLEWARE_LOGGER]
    assert warnings == [
        f"ignoring {HEADER} from 127.0.0.1: not in CHAT_TRUSTED_PROXIES",
        f"ignoring {HEADER} from 127.0.0.2: not in CHAT_TRUSTED_PROXIES",
    ]
    # Nobody was made from an untrusted header.
    database = settings.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_a_disabled_proxied_user_is_a_guest_whatever_else_the_request_carries(
    trusting_server: LiveServer,
) -> None:
    assert me(trusting_server, {HEADER: "grace"}).status_code == 200
    with httpx.Client(base_url=trusting_server.url, timeout=5.0) as admin:
        registered = admin.post(
            "/api/auth/register", json={"username": "boss", "password": secrets.token_urlsafe(16)}
        )
        assert registered.json()["user"]["role"] == "admin"
        assert admin.patch("/api/users/grace", json={"disabled": True}).status_code == 200
        # The proxy's word is final: the admin's own session cookie does not make this request
        # the admin's when the proxy says it is Grace's.
        assert admin.get("/api/me", headers={HEADER: "grace"}).status_code == 401
        assert admin.get("/api/me").json()["user"]["username"] == "boss"
    assert me(trusting_server, {HEADER: "grace"}).status_code == 401
    assert socket_refusal(trusting_server, {HEADER: "grace"}) == 401


@pytest.mark.parametrize(
    ("forwarded_allow_ips", "trusted", "forwarded_for", "signed_in"),
    [
        # An honest proxy on this machine that also says whom it forwards for: the person
        # behind it is 203.0.113.7, and the request still comes from the trusted proxy.
        ("127.0.0.1", "127.0.0.1/32", "203.0.113.7", True),
        # Anyone claiming to be a trusted proxy in X-Forwarded-For (taken at its word by
        # uvicorn under --forwarded-allow-ips '*') is still not one.
        ("*", "10.0.0.0/8", "10.0.0.5", False),
    ],
)
def test_with_proxy_headers_the_connecting_address_is_what_is_trusted(
    settings: Settings,
    forwarded_allow_ips: str,
    trusted: str,
    forwarded_for: str,
    signed_in: bool,
) -> None:
    server_settings = proxy_settings(settings, trusted)
    with LiveServer(server_settings, forwarded_allow_ips=forwarded_allow_ips) as server:
        headers = {HEADER: "grace", "X-Forwarded-For": forwarded_for}
        assert (me(server, headers).status_code == 200) is signed_in
        if signed_in:
            assert socket_user(server, headers)["username"] == "grace"
        else:
            assert socket_refusal(server, headers) == 401


@pytest.mark.parametrize(
    ("forwarded_allow_ips", "trusted", "forwarded_for", "status"),
    [("127.0.0.1", "127.0.0.1", "203.0.113.7", 200), ("*", "10.0.0.0/8", "10.0.0.5", 401)],
)
def test_chat_proxy_headers_checks_the_connecting_address(
    tmp_path: Path, forwarded_allow_ips: str, trusted: str, forwarded_for: str, status: int
) -> None:
    # The same as above through the command line: `chat --proxy-headers` keeps the peer.
    server = ChatServer(
        workdir=tmp_path,
        port=free_port(),
        extra_env={"CHAT_PROXY_USER_HEADER": HEADER, "CHAT_TRUSTED_PROXIES": trusted},
        extra_args=["--proxy-headers", "--forwarded-allow-ips", forwarded_allow_ips],
    )
    server.migrate()
    server.start()
    try:
        headers = {HEADER: "grace", "X-Forwarded-For": forwarded_for}
        response = httpx.get(f"{server.url}/api/me", headers=headers, timeout=5.0)
    finally:
        server.stop()
    assert response.status_code == status, server.log_tail()
