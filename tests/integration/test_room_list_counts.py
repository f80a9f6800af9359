"""GET /api/rooms counts mentions per room: a mention in one room is not counted in another,
nor once it has been read (the room list's counts are correlated subqueries)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.live import LiveServer

PASSWORD = "a quiet orchard path"


def signed_in(server: LiveServer, username: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=10)
    registered = client.post(
        "/api/auth/register", json={"username": username, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    return client


@pytest.fixture
def people(server: LiveServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    ada, bob = signed_in(server, "ada"), signed_in(server, "bob")
    try:
        yield ada, bob
    finally:
        ada.close()
        bob.close()


def counts(client: httpx.Client) -> dict[str, tuple[int, int]]:
    rooms: list[dict[str, Any]] = client.get("/api/rooms").json()["rooms"]
    return {room["name"]: (room["unread"], room["mentions"]) for room in rooms}


def test_mentions_are_counted_in_their_room_only(
    people: tuple[httpx.Client, httpx.Client],
) -> None:
    ada, bob = people
    assert ada.post("/api/rooms", json={"name": "ops", "visibility": "public"}).status_code == 201
    assert ada.put("/api/rooms/ops/members/bob").status_code == 200
    mention = ada.post("/api/rooms/general/messages", json={"body": "hello @bob"})
    assert mention.status_code == 201
    assert ada.post("/api/rooms/ops/messages", json={"body": "no names here"}).status_code == 201
    assert counts(bob) == {"general": (1, 1), "ops": (1, 0)}

    read = bob.post("/api/rooms/general/read", json={"up_to": mention.json()["id"]})
    assert read.status_code == 200
    assert counts(bob) == {"general": (0, 0), "ops": (1, 0)}
