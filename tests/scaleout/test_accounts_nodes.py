"""Accounts across two nodes sharing PostgreSQL and Redis: a session made on one works on the
other; signing out on one is honoured on the other at once, open sockets included; disabling a
user closes their sockets on both."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection

from tests.scaleout.conftest import Node, NodeFactory
from tests.support.ws import close_code, open_socket, recv_json, send_json

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

PASSWORD = "a long enough passphrase"
CLOSE_REVOKED = 4401
# Revocations travel through the broker at once; the periodic re-check (CHAT_AUTH_RECHECK_SECONDS,
# 30 s by default) is the fallback this bound must not depend on.
AT_ONCE_S = 5.0


def register(node: Node, username: str) -> str:
    """A new account's session cookie value."""
    response = httpx.post(
        f"{node.url}/api/auth/register",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.cookies["chat_session"]


def as_cookie(node: Node, session: str) -> dict[str, str]:
    # A cookie-authenticated change must come from the same site: a browser would say so.
    return {"Cookie": f"chat_session={session}", "Origin": node.url}


def me(node: Node, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{node.url}/api/me", headers=headers, timeout=10)


def socket_of(node: Node, headers: dict[str, str]) -> ClientConnection:
    url = node.url.replace("http", "ws", 1) + "/chatsocket"
    return open_socket(url, headers=headers, origin=node.url)


def still_open(connection: ClientConnection) -> None:
    send_json(connection, {"body": "still here?", "client_id": f"ping-{time.monotonic_ns()}"})
    frame: dict[str, Any] = recv_json(connection)
    assert frame.get("body") == "still here?", frame


def test_a_session_works_on_both_nodes_and_logout_ends_it_on_both(
    make_node: NodeFactory, redis_url: str
) -> None:
    a = make_node("a", broadcast_url=redis_url)
    b = make_node("b", broadcast_url=redis_url, CHAT_AUTH_RECHECK_SECONDS="300")
    session = register(a, "ada")

    on_b = me(b, {"Cookie": f"chat_session={session}"})
    assert on_b.status_code == 200
    assert on_b.json()["user"]["username"] == "ada"

    with socket_of(b, {"Cookie": f"chat_session={session}"}) as socket_on_b:
        still_open(socket_on_b)
        logged_out = httpx.post(f"{a.url}/api/auth/logout", headers=as_cookie(a, session))
        assert logged_out.status_code == 204
        assert me(b, {"Cookie": f"chat_session={session}"}).status_code == 401
        started = time.monotonic()
        assert close_code(socket_on_b, timeout=AT_ONCE_S) == CLOSE_REVOKED
        assert time.monotonic() - started < AT_ONCE_S


def test_disabling_a_user_closes_their_sockets_on_both_nodes(
    make_node: NodeFactory, redis_url: str
) -> None:
    a = make_node("a", broadcast_url=redis_url, CHAT_AUTH_RECHECK_SECONDS="300")
    b = make_node("b", broadcast_url=redis_url, CHAT_AUTH_RECHECK_SECONDS="300")
    admin = register(a, "grace")  # the first account, from loopback: an admin
    bob = register(b, "bob")
    token = httpx.post(
        f"{b.url}/api/tokens", json={"name": "bot"}, headers=as_cookie(b, bob), timeout=10
    ).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(socket_of(a, bearer)),
            stack.enter_context(socket_of(b, bearer)),
            stack.enter_context(socket_of(b, {"Cookie": f"chat_session={bob}"})),
        ]
        bystander = stack.enter_context(socket_of(b, {"Cookie": f"chat_session={admin}"}))
        for connection in sockets:
            still_open(connection)
        disabled = httpx.patch(
            f"{a.url}/api/users/bob", json={"disabled": True}, headers=as_cookie(a, admin)
        )
        assert disabled.status_code == 200, disabled.text
        assert [close_code(c, timeout=AT_ONCE_S) for c in sockets] == [CLOSE_REVOKED] * 3
        for node in (a, b):
            assert me(node, bearer).status_code == 401
            assert me(node, {"Cookie": f"chat_session={bob}"}).status_code == 401
        still_open(bystander)  # nobody else was cut off
