"""The rooms pages without JavaScript, and the permalink API they stand on: real uvicorn over a
migrated SQLite file, forms posted as a browser without JavaScript posts them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import LiveServer


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as client:
        yield client


def seed(client: httpx.Client, count: int, room: str = "general") -> list[int]:
    ids = []
    for n in range(count):
        answer = client.post(f"/api/rooms/{room}/messages", json={"body": f"line {n}"})
        assert answer.status_code == 201, answer.text
        ids.append(int(answer.json()["id"]))
    return ids


# ---- around= (permalinks) ----


def test_around_centres_the_page_and_pages_on_both_ways(client: httpx.Client) -> None:
    ids = seed(client, 21)
    page = client.get("/api/rooms/general/messages", params={"around": ids[10], "limit": 5})
    assert page.status_code == 200
    body = page.json()
    assert [m["id"] for m in body["messages"]] == ids[8:13]
    assert (body["has_older"], body["has_newer"]) == (True, True)
    assert (body["older_cursor"], body["newer_cursor"]) == (ids[8], ids[12])
    older = client.get(
        "/api/rooms/general/messages", params={"before": body["older_cursor"], "limit": 5}
    ).json()
    newer = client.get(
        "/api/rooms/general/messages", params={"after": body["newer_cursor"], "limit": 5}
    ).json()
    assert [m["id"] for m in older["messages"]] == ids[3:8]
    assert [m["id"] for m in newer["messages"]] == ids[13:18]


@pytest.mark.parametrize(
    ("index", "limit", "expected", "beyond"),
    [
        (0, 5, slice(0, 3), (False, True)),  # the first message: nothing older
        (20, 5, slice(18, 21), (True, False)),  # the newest: nothing newer
        (10, 1, slice(10, 11), (True, True)),
        (10, 2, slice(10, 12), (True, True)),
        (2, 50, slice(0, 21), (False, False)),
    ],
)
def test_around_at_the_ends_and_odd_limits(
    client: httpx.Client, index: int, limit: int, expected: slice, beyond: tuple[bool, bool]
) -> None:
    ids = seed(client, 21)
    body = client.get("/api/messages", params={"around": ids[index], "limit": limit}).json()
    assert [m["id"] for m in body["messages"]] == ids[expected]
    assert (body["has_older"], body["has_newer"]) == beyond


def test_around_a_message_of_another_room_or_none_is_404(client: httpx.Client) -> None:
    ids = seed(client, 3)
    for missing in (ids[-1] + 1, 9_000_000):
        answer = client.get("/api/rooms/general/messages", params={"around": missing})
        assert answer.status_code == 404
        assert answer.json()["error"] == "message_not_found"
    # The message exists, but in general, not in this room (a public room of someone's).
    client.post(
        "/api/auth/register",
        json={"username": "owner", "password": "a long enough passphrase"},
    )
    assert (
        client.post("/api/rooms", json={"name": "side", "visibility": "public"}).status_code == 201
    )
    seed(client, 2, room="side")
    answer = client.get("/api/rooms/side/messages", params={"around": ids[1]})
    assert answer.status_code == 404


@pytest.mark.parametrize("other", ["before", "after"])
def test_around_with_another_cursor_is_400(client: httpx.Client, other: str) -> None:
    ids = seed(client, 3)
    answer = client.get("/api/messages", params={"around": ids[1], other: ids[0]})
    assert answer.status_code == 400
    assert answer.json()["error"] == "conflicting_cursors"
