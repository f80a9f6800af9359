"""The change log through `GET /api/events`, against a real uvicorn on a migrated SQLite file.

A person who was away catches up every room with one request, in order, exactly once, with the
very frames the socket sent live; a cursor the log cannot replay gets "reload", never a gap; and
the catch-up never hands out a room's changes to someone who may not read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.live import LiveServer
from tests.support.people import Frame, Person, of_type, people_on

ROOMS = ["alpha", "beta", "gamma", "delta", "eps"]
PER_ROOM = 4


@pytest.fixture
def people(server: LiveServer) -> Iterator[dict[str, Person]]:
    with people_on(server.url, "ada", "bob", "cy") as made:
        yield made


def seqs(events: list[Frame]) -> list[int]:
    return [event["seq"] for event in events]


def test_one_request_catches_up_every_room_in_order_exactly_once(
    server: LiveServer, people: dict[str, Person]
) -> None:
    ada, bob = people["ada"], people["bob"]
    for n, room in enumerate(ROOMS):
        ada.create_room(room, visibility="private" if n % 2 else "public")
        ada.add(room, bob)
    ada.create_room("later", visibility="private")
    # Bob's other device stays connected: the catch-up must be what it was sent live.
    with bob.socket(server.ws_url, server.origin) as online:
        online.drain()
        cursor = bob.latest_seq()

        posted: list[Frame] = []
        for n in range(PER_ROOM):
            for room in ROOMS:  # interleaved, so only one log order is right
                posted.append(ada.post(room, f"{room} {n}"))
        ada.add("later", bob)
        later = ada.post("later", "after bob joined")
        bob.mark_read("beta", posted[-1]["id"])

        answer = bob.events(after=cursor)
        live_seen = online.wait_for(of_type("read", room="beta"))
        assert live_seen["up_to"] == posted[-4]["id"]  # beta's newest message
        online.wait_for(of_type("message", id=later["id"]))

    assert answer["reload"] is False and answer["has_more"] is False
    events = answer["events"]
    assert seqs(events) == sorted(set(seqs(events))), "in log order, each once"
    assert answer["cursor"] >= events[-1]["seq"]

    messages = [e for e in events if e["type"] == "message"]
    assert [m["id"] for m in messages] == [m["id"] for m in posted] + [later["id"]]
    assert [(m["room"], m["body"]) for m in messages[:-1]] == [
        (m["room"], m["body"]) for m in posted
    ]
    joined = [e for e in events if e["type"] == "member_joined"]
    assert [(e["room"], e["user"]["id"]) for e in joined] == [("later", bob.id)]
    assert joined[0]["seq"] < messages[-1]["seq"], "bob joined before the message he gets"
    [read] = [e for e in events if e["type"] == "read"]
    assert read["room"] == "beta" and read["unread"] == 0
    assert len(events) == len(posted) + 3

    # Exactly the frames the socket got live, field for field.
    live = {frame["seq"]: frame for frame in online.frames if "seq" in frame}
    assert {e["seq"]: e for e in events} == {s: f for s, f in live.items() if s > cursor}

    # From the cursor it returned, nothing is left, and nothing is given twice.
    again = bob.events(after=answer["cursor"])
    assert again == {"reload": False, "cursor": answer["cursor"], "has_more": False, "events": []}


def test_pages_of_a_catch_up_add_up_to_the_whole(
    server: LiveServer, people: dict[str, Person]
) -> None:
    ada, bob = people["ada"], people["bob"]
    for room in ROOMS[:3]:
        ada.create_room(room)
        ada.add(room, bob)
    cursor = bob.latest_seq()
    for n in range(7):
        for room in ROOMS[:3]:
            ada.post(room, f"{room} {n}")
    whole = bob.events(after=cursor)
    assert not whole["has_more"] and len(whole["events"]) == 21

    paged: list[Frame] = []
    after, requests = cursor, 0
    while True:
        page = bob.events(after=after, limit=5)
        requests += 1
        paged += page["events"]
        after = page["cursor"]
        if not page["has_more"]:
            break
        assert len(page["events"]) == 5 and after == page["events"][-1]["seq"]
    assert requests == 5
    assert paged == whole["events"]
    assert after == whole["cursor"]


def test_a_cursor_the_log_cannot_replay_is_told_to_reload(make_server: ServerFactory) -> None:
    server = make_server(replay_window=10)
    ada = Person(server.url, "ada")
    try:
        ada.create_room("busy")
        start = ada.latest_seq()
        for n in range(12):
            ada.post("busy", f"m{n}")
        latest = ada.latest_seq()
        assert latest - start >= 12

        within = ada.events(after=latest - 10)
        assert within["reload"] is False and len(within["events"]) == 10

        reload = {"reload": True, "cursor": latest, "events": [], "has_more": False}
        assert ada.events(after=latest - 11) == reload  # one change too far behind
        assert ada.events(after=start) == reload
        assert ada.events(after=0) == reload
        assert ada.events(after=latest + 1) == reload  # from the future: a reset database
        assert ada.events(after=latest) == {
            "reload": False,
            "cursor": latest,
            "has_more": False,
            "events": [],
        }
        # The reload cursor is a place to start again from: nothing is lost after it.
        newest = ada.post("busy", "after the reload")
        assert [e.get("id") for e in ada.events(after=latest)["events"]] == [newest["id"]]
    finally:
        ada.close()


def room_events(answer: dict[str, Any], room: str) -> list[Frame]:
    return [event for event in answer["events"] if event.get("room") == room]


def test_catch_up_gives_no_room_to_someone_who_may_not_read_it(
    server: LiveServer, people: dict[str, Person]
) -> None:
    ada, bob, cy = people["ada"], people["bob"], people["cy"]
    ada.create_room("secret", visibility="private")
    ada.create_room("open")
    ada.add("secret", bob)
    cursor = ada.latest_seq()

    before = ada.post("secret", "bob may read this")
    ada.post("open", "anyone may read this")
    ada.remove("secret", bob)
    after = [ada.post("secret", f"not for bob {n}") for n in range(3)]
    edited = ada.post("secret", "to be changed")
    ada.edit("secret", edited["id"], "changed after bob left")
    ada.react("secret", before["id"], "👍")

    # Ada, a member, sees all of it (the test can fail).
    assert len(room_events(ada.events(after=cursor), "secret")) == 8

    # Bob was removed: he is told so, and gets nothing of the room, before or after.
    bob_view = bob.events(after=cursor, rooms="secret,open")
    assert [(e["type"], e["user"]["id"]) for e in room_events(bob_view, "secret")] == [
        ("member_left", bob.id)
    ]
    assert [e["body"] for e in room_events(bob_view, "open") if e["type"] == "message"] == [
        "anyone may read this"
    ]
    # Cy never belonged: naming the room changes nothing, and says nothing about it.
    cy_view = cy.events(after=cursor, rooms="secret,open")
    assert room_events(cy_view, "secret") == []
    assert len(room_events(cy_view, "open")) == 1
    # Nor a guest.
    with httpx.Client(base_url=server.url, timeout=10) as guest:
        response = guest.get("/api/events", params={"after": cursor, "rooms": "secret,open"})
        assert response.status_code == 200
        assert room_events(response.json(), "secret") == []
        assert len(room_events(response.json(), "open")) == 1
    hidden = {"bob may read this", "changed after bob left", *(m["body"] for m in after)}
    for answer in (bob_view, cy_view):
        text = str(answer)
        assert not [body for body in hidden if body in text]
