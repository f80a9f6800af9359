"""Rooms across two `python -m chat` nodes on one PostgreSQL database.

A member removed through node A stops getting the room on node B at once (messages, typing,
presence), while their socket there stays open for their other rooms; and a broker outage
heals with no gap in any room, edits and reactions included, for both fan-out backends: every
socket gets every change once, and what a page makes of them (live or by one catch-up through
the other node) is a fresh load.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter
from collections.abc import Callable
from functools import partial

import pytest

from tests.e2e.server import ChatServer
from tests.scaleout.conftest import NodeFactory
from tests.scaleout.harness import eventually, ready_is
from tests.scaleout.test_listen_notify import notify_url
from tests.support.client_view import ClientView, shown
from tests.support.people import Frame, Person, Socket, of_type, people_on, presence_of
from tests.support.postgres import execute, run_async
from tests.support.services import PrivateRedis

pytestmark = [pytest.mark.postgres]

ROOMS = ("one", "two", "three")


def wait_ready(nodes: list[ChatServer], status: int, within: float, what: str) -> None:
    for node in nodes:
        asyncio.run(eventually(ready_is(node, status), within, f"{node.url} {what}"))


def by(frame: Frame, person: Person) -> bool:
    user: dict[str, object] = frame.get("user") or {}
    return user.get("id") == person.id


def in_room(room: str) -> Callable[[Frame], bool]:
    return lambda frame: frame.get("room") == room


@pytest.mark.redis
def test_a_member_removed_on_one_node_stops_getting_the_room_on_the_other(
    make_node: NodeFactory, redis_url: str
) -> None:
    a = make_node("a", broadcast_url=redis_url)
    b = make_node("b", broadcast_url=redis_url)
    with people_on(a.url, "ada", "bob", "cy") as people:
        ada, bob, cy = people["ada"], people["bob"], people["cy"]
        for room, visibility in (("den", "private"), ("ops", "public")):
            ada.create_room(room, visibility=visibility)
            ada.add(room, bob)
            ada.add(room, cy)
        with (
            bob.socket(b.ws_url, b.url) as on_b,
            ada.socket(a.ws_url, a.url) as ada_on_a,
        ):
            on_b.send({"type": "watch", "room": "den"})
            on_b.wait_for(of_type("presence_snapshot", room="den"))
            ada_on_a.send({"type": "watch", "room": "den"})
            ada_on_a.wait_for(of_type("presence_snapshot", room="den"))
            # Before: bob on b gets den's messages, typing and presence from node a.
            first = ada.post("den", "before")
            on_b.wait_for(of_type("message", id=first["id"]))
            ada_on_a.send({"type": "typing", "room": "den"})
            on_b.wait_for(of_type("typing", room="den"))
            with cy.socket(a.ws_url, a.url):
                on_b.wait_for(presence_of(cy.id, "online"))
            on_b.wait_for(presence_of(cy.id, "offline"))

            ada.remove("den", bob)
            left = on_b.wait_for(of_type("member_left", room="den"))
            assert left["user"]["id"] == bob.id and left["by"]["id"] == ada.id
            gone = len(on_b.frames)

            # After: den's message, cy's typing and cy coming online on node a, then ops news.
            ada.post("den", "after bob left")
            with cy.socket(a.ws_url, a.url) as cy_on_a:
                cy_on_a.send({"type": "typing", "room": "den"})
                ada_on_a.wait_for(lambda f: of_type("typing", room="den")(f) and by(f, cy))
                ada_on_a.wait_for(presence_of(cy.id, "online"))
                cy_on_a.send({"type": "typing", "room": "ops"})
                marker = ada.post("ops", "ops goes on")
                on_b.wait_for(of_type("message", id=marker["id"]))
                on_b.wait_for(of_type("typing", room="ops"))
                on_b.drain(quiet=1.5)  # presence is flushed every second
            # The socket is still open, and den is gone for it.
            on_b.send({"type": "subscribe", "room": "den"})
            refused = on_b.wait_for(of_type("error"))
            assert refused["error"] == "not_found"
            on_b.send({"body": "let me back", "room": "den", "client_id": "back"})
            refused = on_b.wait_for(of_type("error", client_id="back"))
            assert refused["error"] == "not_found"
        after = on_b.frames[gone:]
        assert [f for f in after if in_room("den")(f)] == [], "den reached bob after removal"
        assert [f for f in after if f.get("type") == "presence"] == [], "den's presence too"
        assert "after bob left" not in str(after)


class Story:
    """Three private rooms; bob listens on node b, cy on node a; changes come through both."""

    def __init__(self, a: ChatServer, b: ChatServer, people: dict[str, Person]) -> None:
        self.a, self.b = a, b
        self.ada, self.bob, self.cy, self.eve = (people[n] for n in ("ada", "bob", "cy", "eve"))
        self.eve_on_b = self.eve.on(b.url)
        for room in ROOMS:
            self.ada.create_room(room, visibility="private")
            for person in (self.bob, self.cy, self.eve):
                self.ada.add(room, person)
        self.seed = {room: self.ada.post(room, f"{room} seed") for room in ROOMS}
        self.cursor = self.bob.latest_seq()
        self.before = [m for room in ROOMS for m in self.bob.history(room)]  # what pages show
        self.round = 0

    def changes(self) -> None:
        """Something of every kind in every room, through node a (ada) and node b (eve)."""
        self.round += 1
        n = self.round
        for room in ROOMS:
            seed = self.seed[room]["id"]
            self.ada.post(room, f"{room} from a {n}")
            self.ada.edit(room, seed, f"{room} seed, edit {n}")
            self.ada.react(room, seed, "👍", on=n % 2 == 1)
            response = self.eve_on_b.post(f"/api/rooms/{room}/messages", json={"body": f"b {n}"})
            assert response.status_code == 201, response.text
            message = f"/api/rooms/{room}/messages/{response.json()['id']}"
            for response in (
                self.eve_on_b.put(f"{message}/reactions/🎉"),
                self.eve_on_b.delete(message),
            ):
                assert response.status_code == 204, response.text

    def check(self, sockets: list[Socket]) -> None:
        """Every socket got every change of the log since the start exactly once."""
        markers = [self.ada.post(room, f"{room} marker") for room in ROOMS]
        for socket in sockets:
            for marker in markers:
                socket.wait_for(of_type("message", id=marker["id"]), within=20)
            socket.drain(quiet=0.5)  # room for a late duplicate
        answer = self.bob.events(after=self.cursor)
        assert not answer["has_more"]
        logged = [event["seq"] for event in answer["events"]]
        kinds = Counter(event.get("change", event["type"]) for event in answer["events"])
        assert kinds["edited"] >= 3 and kinds["reactions"] >= 6 and kinds["deleted"] >= 3
        for socket in sockets:
            got = [frame["seq"] for frame in socket.frames if "seq" in frame]
            twice = sorted(seq for seq, count in Counter(got).items() if count > 1)
            missing = sorted(set(logged) - set(got))
            assert not twice and not missing, f"twice {twice}, missing {missing}"
            assert set(got) == set(logged)
        # Applied as a page applies them, the live frames (replays included) and bob's
        # catch-up through node b both end where a fresh load starts.
        with self.bob.on(self.b.url) as on_b:
            response = on_b.get("/api/events", params={"after": self.cursor})
        assert response.status_code == 200, response.text
        for frames in [socket.frames for socket in sockets] + [response.json()["events"]]:
            view = ClientView()
            view.load(copy.deepcopy(self.before))
            for frame in frames:
                if "seq" in frame:
                    view.apply(frame)
            for room in ROOMS:
                assert view.room(room) == [shown(m) for m in self.bob.history(room)], room

    def close(self) -> None:
        self.eve_on_b.close()


def through_an_outage(a: ChatServer, b: ChatServer, *, outage: Callable[[Story], None]) -> None:
    with people_on(a.url, "ada", "bob", "cy", "eve") as people:
        story = Story(a, b, people)
        try:
            with (
                story.bob.socket(b.ws_url, b.url) as on_b,
                story.cy.socket(a.ws_url, a.url) as on_a,
            ):
                on_b.drain()
                on_a.drain()
                story.changes()  # with the broker
                outage(story)
                story.changes()  # healed
                story.check([on_b, on_a])
        finally:
            story.close()


@pytest.mark.redis
@pytest.mark.slow
def test_a_redis_outage_heals_with_no_gap_in_any_room(
    private_redis: PrivateRedis, make_node: NodeFactory
) -> None:
    a = make_node("a", broadcast_url=private_redis.url)
    b = make_node("b", broadcast_url=private_redis.url)

    def outage(story: Story) -> None:
        private_redis.kill()
        wait_ready([a, b], 503, 10, "reports the broker down")
        story.changes()  # edits, reactions, deletes and messages no broker carries
        story.changes()
        private_redis.start()
        wait_ready([a, b], 200, 20, "reconnects to the broker")

    through_an_outage(a, b, outage=outage)
    assert "reconnected after" in b.log_tail(400)


@pytest.mark.slow
def test_a_listen_notify_outage_heals_with_no_gap_in_any_room(
    make_node: NodeFactory, pg_url: str
) -> None:
    a = make_node("a", broadcast_url=notify_url(pg_url))
    b = make_node("b", broadcast_url=notify_url(pg_url))
    terminate = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE application_name IN ('chat-listener-{a.pid}', 'chat-listener-{b.pid}')"
    )

    def outage(story: Story) -> None:
        # Both listeners are cut again and again while changes are made on both nodes.
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            run_async(partial(execute, pg_url, terminate))
            story.changes()
        wait_ready([a, b], 200, 20, "listens again")

    through_an_outage(a, b, outage=outage)
    assert "connection lost" in b.log_tail(400)
