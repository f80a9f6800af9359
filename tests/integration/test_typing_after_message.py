"""Typing is coalesced to one broadcast every few seconds per person and room, except that a
message resets it: clients drop the author's indicator when the message arrives, so the next
keystroke must show again at once."""

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
        typist.send({"type": "typing", "room": "general"})  # after the message: news again
        after = watcher.drain(quiet=1.0)
        assert [f["user"]["username"] for f in after if f.get("type") == "typing"] == ["ada"]
