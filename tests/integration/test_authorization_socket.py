"""Who may do what over /chatsocket: every socket command x every kind of caller x every kind
of room -> the frame it answers (or the error frame), over a real uvicorn.

One server for the table, on a copy of the seeded database (tests.support.callers); rows stay
independent because each one that changes a message changes a message of its own. A private
room or DM the caller is not in answers `not_found`, the very frame a room that never existed
gets.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from chat.settings import Settings
from tests.conftest import UNLIMITED_RATES
from tests.support.callers import (
    ARCHIVED,
    CALLER_CREDENTIALS,
    DM,
    NO_SUCH_ROOM,
    PRIVATE,
    PUBLIC,
    ROOM_KINDS,
    World,
)
from tests.support.live import LiveServer
from tests.support.ws import close_code, recv_json, send_json

CALLERS = ("guest", "nonmember", "member", "moderator", "owner", "admin", "removed")
# A frame whose answer ends every exchange: frames are answered in the order sent, so what
# arrived before this one's answer is everything the command under test caused. It changes
# nothing: the name is no room name at all.
BARRIER = {"type": "subscribe", "room": "-"}
BARRIER_ANSWER = "invalid_room"
ANSWERS = {
    "N": "error:not_found",
    "S": "error:sign_in_required",
    "F": "error:forbidden",
    "A": "error:room_archived",
    "ok": "ok",  # accepted, nothing to answer
}
_ids = itertools.count(1)
TYPING_WAIT_S = 4.0  # over the server's refresh (3 s) and its gap between a room's frames


def _answers(public: str, private: str, dm: str, archived: str) -> dict[str, str]:
    return {PUBLIC: public, PRIVATE: private, DM: dm, ARCHIVED: archived}


# Each command's frame ({room} and {id} filled in) and its answers, in CALLERS order:
#   guest nonmember member moderator owner admin removed
COMMANDS: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "subscribe": (
        {"type": "subscribe", "room": "{room}"},
        _answers(
            "subscribed " * 7,
            "N N subscribed subscribed subscribed N N",
            "N N subscribed N subscribed N N",
            "subscribed " * 7,
        ),
    ),
    "unsubscribe": (
        {"type": "unsubscribe", "room": "{room}"},
        _answers(
            "unsubscribed " * 7,
            "N N unsubscribed unsubscribed unsubscribed N N",
            "N N unsubscribed N unsubscribed N N",
            "unsubscribed " * 7,
        ),
    ),
    "send": (
        {"room": "{room}", "body": "said over the socket", "author": "a guest"},
        _answers(
            "message " * 7,
            "N N message message message N N",
            "N N message N message N N",
            "A " * 7,
        ),
    ),
    "edit": (
        {"type": "edit", "room": "{room}", "id": "{id}", "body": "edited over the socket"},
        _answers(
            "S F message_updated F F F F",
            "N N message_updated F F N N",
            "N N message_updated N F N N",
            "S F A F F F F",
        ),
    ),
    "delete": (
        {"type": "delete", "room": "{room}", "id": "{id}"},
        _answers(
            "S F message_updated message_updated message_updated message_updated F",
            "N N message_updated message_updated message_updated N N",
            "N N message_updated N F N N",
            "S F A A A A F",
        ),
    ),
    "react": (
        {"type": "react", "room": "{room}", "id": "{id}", "emoji": "👍", "on": True},
        _answers(
            "S " + "message_updated " * 6,
            "N N message_updated message_updated message_updated N N",
            "N N message_updated N message_updated N N",
            "S A A A A A A",
        ),
    ),
    "typing": (
        {"type": "typing", "room": "{room}"},
        _answers(
            "S " + "typing " * 6,
            "N N typing typing typing N N",
            "N N typing N typing N N",
            "S A A A A A A",
        ),
    ),
    "watch": (
        {"type": "watch", "room": "{room}"},
        _answers(
            "presence_snapshot " * 7,
            "N N presence_snapshot presence_snapshot presence_snapshot N N",
            "N N presence_snapshot N presence_snapshot N N",
            "presence_snapshot " * 7,
        ),
    ),
}


@pytest.fixture(scope="module")
def live(seeded_world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = seeded_world.copy_to(tmp_path_factory.mktemp("socket-table"))
    with LiveServer(Settings(database_url=url, **UNLIMITED_RATES)) as server:
        yield server


def open_as(server: LiveServer, world: World, caller: str) -> ClientConnection:
    headers = {"Origin": server.origin, **world.headers(caller)}
    return connect(server.ws_url, additional_headers=headers, open_timeout=5, close_timeout=2)


def fresh_message(server: LiveServer, world: World, kind: str) -> int:
    """A message of bob's for one row to change (the archived room takes none: its seeded one)."""
    if kind == ARCHIVED:
        return world.messages[ARCHIVED]["bob"]
    answer = httpx.post(
        f"{server.url}/api/rooms/{world.rooms[kind]}/messages",
        headers=world.headers("member_token"),
        json={"body": "a message to change"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    message_id: int = answer.json()["id"]
    return message_id


def fill(template: dict[str, Any], *, room: str, message_id: int) -> dict[str, Any]:
    values = {"{room}": room, "{id}": message_id}
    return {key: values.get(value, value) for key, value in template.items()}


def exchange(connection: ClientConnection, frame: dict[str, Any]) -> list[dict[str, Any]]:
    """Send `frame` and a barrier; every frame that came back before the barrier's answer (a
    message is stored after that: then up to its echo or refusal, which name its client_id)."""
    client_id = f"row-{next(_ids)}"
    send_json(connection, {**frame, "client_id": client_id})
    send_json(connection, BARRIER)
    frames: list[dict[str, Any]] = []
    while (answer := recv_json(connection)).get("error") != BARRIER_ANSWER:
        frames.append(answer)
    if frame.get("type", "message") == "message" and not frames:
        while (answer := recv_json(connection)).get("client_id") != client_id:
            pass
        frames.append(answer)
    return frames


def watcher_for(caller: str) -> str:
    """A member of every seeded room who is not `caller`."""
    return "member" if caller == "owner" else "owner"


def heard(connection: ClientConnection) -> list[dict[str, Any]]:
    """What reached `connection` so far: frames are queued in order, so whatever was delivered
    before this barrier is sent comes back before its answer."""
    send_json(connection, BARRIER)
    frames: list[dict[str, Any]] = []
    while (answer := recv_json(connection)).get("error") != BARRIER_ANSWER:
        frames.append(answer)
    return frames


def typing_heard(watcher: ClientConnection, typist: str) -> list[dict[str, Any]]:
    """The room's typing frame naming `typist`, if one comes within the room's refresh: a frame
    waits up to a second when another row's typist was just shown in the same room."""
    deadline = time.monotonic() + TYPING_WAIT_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = recv_json(watcher, timeout=left)
        except TimeoutError:
            break
        names = [user["username"] for user in frame.get("users", [])]
        if frame.get("type") == "typing" and typist in names:
            return [frame]
    return []


def without_client_id(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in frame.items() if k != "client_id"} for frame in frames]


def outcome(frames: list[dict[str, Any]]) -> str:
    """The first frame's type (`error:<code>` for an error); `ok` when nothing came back."""
    if not frames:
        return "ok"
    first = frames[0]
    return f"error:{first['error']}" if first["type"] == "error" else str(first["type"])


def subscribe_if_allowed(connection: ClientConnection, room: str) -> None:
    """Listen to the room first (where the caller may), so a change there comes back here."""
    exchange(connection, {"type": "subscribe", "room": room})


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("kind", ROOM_KINDS)
@pytest.mark.parametrize("command", COMMANDS)
def test_socket_commands(
    live: LiveServer, seeded_world: World, command: str, kind: str, caller: str
) -> None:
    world = seeded_world
    template, answers = COMMANDS[command]
    expected = dict(zip(CALLERS, answers[kind].split(), strict=True))[caller]
    message_id = fresh_message(live, world, kind) if "id" in template else 0
    with contextlib.ExitStack() as sockets:
        connection = sockets.enter_context(open_as(live, world, caller))
        if command not in ("subscribe", "unsubscribe"):
            subscribe_if_allowed(connection, world.rooms[kind])
        watcher = None
        if command == "typing":
            # Typing goes to the room's people (the typist's own socket too, when it listens):
            # someone else in every seeded room (dave owns them all and is in the DM) hears it
            # or not.
            watcher = sockets.enter_context(open_as(live, world, watcher_for(caller)))
            subscribe_if_allowed(watcher, world.rooms[kind])
        never_existed = exchange(
            connection, fill(template, room=NO_SUCH_ROOM, message_id=message_id)
        )
        frames = exchange(connection, fill(template, room=world.rooms[kind], message_id=message_id))
        if watcher is not None and not frames:
            frames = typing_heard(watcher, CALLER_CREDENTIALS[caller][0])
    assert outcome(frames) == ANSWERS.get(expected, expected), frames
    if expected == "N":
        assert without_client_id(frames) == without_client_id(never_existed)


# ---- what is not about one room ----


# A frame without a room goes to general (the Tornado-era client); presence is the page's.
NO_ONE_ROOM: dict[str, tuple[dict[str, Any], str]] = {
    "send_general": ({"body": "to general", "author": "a guest"}, "message"),
    "presence": ({"type": "presence", "state": "hidden"}, "ok"),
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", NO_ONE_ROOM)
def test_commands_of_no_one_room(
    live: LiveServer, seeded_world: World, caller: str, name: str
) -> None:
    frame, expected = NO_ONE_ROOM[name]
    with open_as(live, seeded_world, caller) as connection:
        assert outcome(exchange(connection, frame)) == expected


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("guest", None),
        ("member", None),
        ("member_token", None),
        ("admin", None),
        ("disabled", None),  # an ended session: a guest
        ("logged_out", None),
        ("disabled_token", 401),
        ("revoked_token", 401),
    ],
)
def test_handshake(live: LiveServer, seeded_world: World, caller: str, status: int | None) -> None:
    try:
        with open_as(live, seeded_world, caller) as connection:
            exchange(connection, {"type": "presence", "state": "visible"})
    except InvalidStatus as refused:
        assert refused.response.status_code == status
        assert json.loads(refused.response.body or b"{}")["error"] == "invalid_token"
        return
    assert status is None


def test_a_removed_member_stops_receiving_at_once(
    seeded_world: World, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """erin is added to the private room, listens, is removed: her open socket gets nothing of
    the room from then on (Rocket.Chat #11322), while a member's still does."""
    world = seeded_world
    url = world.copy_to(tmp_path_factory.mktemp("removal"))
    room = world.rooms[PRIVATE]
    with LiveServer(Settings(database_url=url, **UNLIMITED_RATES)) as server:
        owner = {**world.headers("owner"), "Origin": server.origin}
        with httpx.Client(base_url=server.url, headers=owner, timeout=10) as dave:
            assert dave.put(f"/api/rooms/{room}/members/erin").status_code == 200
            with (
                open_as(server, world, "nonmember") as erin,
                open_as(server, world, "member") as bob,
            ):
                for connection in (erin, bob):
                    assert outcome(exchange(connection, {"type": "subscribe", "room": room})) == (
                        "subscribed"
                    )
                assert dave.delete(f"/api/rooms/{room}/members/erin").status_code == 204
                posted = dave.post(f"/api/rooms/{room}/messages", json={"body": "after erin"})
                assert posted.status_code == 201
                assert _next_message(bob)["body"] == "after erin"
                expect_silence_of_room(erin, room)
                assert (
                    outcome(exchange(erin, {"type": "subscribe", "room": room})) == (ANSWERS["N"])
                )


def _next_message(connection: ClientConnection) -> dict[str, Any]:
    while (frame := recv_json(connection))["type"] != "message":
        pass
    return frame


def expect_silence_of_room(connection: ClientConnection, room: str) -> None:
    """Nothing of `room` arrives (news of one's own removal may, and says no more)."""
    try:
        while True:
            frame = json.loads(connection.recv(timeout=0.5))
            assert frame.get("type") == "member_left" or frame.get("room") != room, frame
    except TimeoutError:
        return


# How a credential ends while a socket it opened is open: (the socket's caller, who ends it,
# the request).
ENDINGS = {
    "token_revoked": ("member_token", "member", "DELETE", "/api/tokens/{token_id}", None),
    "signed_out": ("member", "member", "POST", "/api/auth/logout", None),
    "disabled": ("member", "admin", "PATCH", "/api/users/bob", {"disabled": True}),
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_socket_closes_when_its_credential_ends(
    seeded_world: World, tmp_path_factory: pytest.TempPathFactory, ending: str
) -> None:
    world = seeded_world
    caller, by, method, path, payload = ENDINGS[ending]
    url = world.copy_to(tmp_path_factory.mktemp(ending))
    settings = Settings(database_url=url, **UNLIMITED_RATES)
    with LiveServer(settings) as server, open_as(server, world, caller) as connection:
        assert outcome(exchange(connection, {"type": "subscribe", "room": "general"})) == (
            "subscribed"
        )
        answer = httpx.request(
            method,
            server.url + path.format(token_id=world.people["bob"].token_id),
            headers=world.headers(by),
            json=payload,
            timeout=10,
        )
        assert answer.status_code in (200, 204), answer.text
        assert close_code(connection) is not None
