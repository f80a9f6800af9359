"""A message ends its author's typing: clients drop the indicator when the message arrives,
the server forgets the typist, and so their next keystroke is news shown within the room's
gap (1 s), not folded into the next refresh (3 s after the last frame)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live import LiveServer
from tests.support.people import Person, of_type, people_on


@pytest.fixture
def people(server: LiveServer) -> Iterator[dict[str, Person]]:
    with people_on(server.url, "ada", "bob") as made:
        yield made


def test_a_keystroke_after_a_message_is_shown_at_once(
    server: LiveServer, people: dict[str, Person]
) -> None:
    ada, bob = people["ada"], people["bob"]
    with (
        ada.socket(server.ws_url, server.origin) as typist,
        bob.socket(server.ws_url, server.origin) as watcher,
    ):
        typist.send({"type": "typing", "room": "general"})
        watcher.wait_for(of_type("typing", room="general"))
        typist.send({"type": "typing", "room": "general"})  # within 3 s: coalesced away
        typist.send({"body": "done typing", "client_id": "m-1"})
        watcher.wait_for(lambda frame: frame.get("body") == "done typing")
        assert not [f for f in watcher.drain() if f.get("type") == "typing"]
        seen = len(watcher.frames)
        typist.send({"type": "typing", "room": "general"})  # after the message: news again
        # Well before the refresh that would have carried her had the server not forgotten her.
        watcher.wait_for(
            lambda frame: is_new(frame, watcher.frames[seen:]) and typing_of(frame), 2.0
        )


def is_new(frame: dict[str, object], new: list[dict[str, object]]) -> bool:
    return any(frame is read for read in new)


def typing_of(frame: dict[str, object]) -> bool:
    users = frame.get("users") if frame.get("type") == "typing" else None
    return isinstance(users, list) and [user["username"] for user in users] == ["ada"]
