"""Who may do what in a room: every room and conversation route x every kind of caller x every
kind of room -> the exact answer.

The rule that matters most: a private room or a DM the caller is not in does not exist for
them. Every such row is also asked of a room that never existed, and the two answers must be the
same bytes; no answer to an outsider may carry the private rooms' text or names.

In process (httpx over ASGI), each row on its own copy of one seeded database
(tests.support.callers: bob member, carol moderator, dave owner, ada admin, erin in no room,
frank removed, hal's token revoked).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat.settings import Settings
from tests.conftest import UNLIMITED_RATES
from tests.support.asgi import client, started_app
from tests.support.callers import (
    ARCHIVED,
    CALLER_CREDENTIALS,
    DM,
    NO_SUCH_ROOM,
    PRIVATE,
    PUBLIC,
    ROOM_KINDS,
    SECRET_ROOM,
    SECRETS,
    World,
)

pytestmark = pytest.mark.anyio

# The columns of every row, in this order.
CALLERS = (
    "guest",
    "nonmember",  # erin: signed in, in none of these rooms
    "member",  # bob: a member of every room, the author of the messages rows aim at
    "moderator",  # carol: moderator of the rooms, not in the DM
    "owner",  # dave: owner of the rooms, a plain member of the DM
    "admin",  # ada: a server admin in none of these rooms
    "removed",  # frank: removed from the rooms, left the DM
    "revoked_token",  # hal's revoked API token
)
# Who the private room and the DM must not exist for.
OUTSIDERS = {
    PRIVATE: frozenset({"guest", "nonmember", "admin", "removed"}),
    DM: frozenset({"guest", "nonmember", "moderator", "admin", "removed"}),
}
CALLER_USERNAMES = {caller: CALLER_CREDENTIALS[caller][0] for caller in CALLERS}
ANSWERS = {
    "N": "404:not_found",
    "T": "401:invalid_token",
    "U": "401:unauthorized",
    "S": "401:sign_in_required",
    "F": "403:forbidden",
    "A": "403:room_archived",
    "M": "403:not_a_member",
}
THUMBS_UP = "%F0%9F%91%8D"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # {room}; {message} is bob's message in that room
    answers: dict[str, str]  # room kind -> one answer per caller, in CALLERS order
    json: Any = None

    def expected(self, kind: str, caller: str) -> str:
        entries = dict(zip(CALLERS, self.answers[kind].split(), strict=True))
        return ANSWERS.get(entries[caller], entries[caller])


def _answers(public: str, private: str, dm: str, archived: str) -> dict[str, str]:
    return {PUBLIC: public, PRIVATE: private, DM: dm, ARCHIVED: archived}


SEE = _answers(
    "200 200 200 200 200 200 200 T",
    "N N 200 200 200 N N T",
    "N N 200 N 200 N N T",
    "200 200 200 200 200 200 200 T",
)
# Reacting and taking a reaction back: whoever may post, on a message not deleted.
REACT = _answers(
    "S 204 204 204 204 204 204 T",
    "N N 204 204 204 N N T",
    "N N 204 N 204 N N T",
    "S A A A A A A T",
)
ONE = "/api/rooms/{room}/messages/{message}"
ROUTES: dict[str, Route] = {
    #                 guest nonmember member moderator owner admin removed revoked
    "room": Route("GET", "/api/rooms/{room}", SEE),
    "update_room": Route(
        "PATCH",
        "/api/rooms/{room}",
        _answers(
            "F F F 200 200 200 F T",
            "N N F 200 200 N N T",
            "N N F N F N N T",
            "F F F 200 200 200 F T",
        ),
        json={"topic": "changed"},
    ),
    "members": Route("GET", "/api/rooms/{room}/members", SEE),
    "add_member": Route(
        "PUT",
        "/api/rooms/{room}/members/erin",
        _answers(
            "U 200 F 200 200 200 F T",
            "N N F 200 200 N N T",
            "N N F N F N N T",
            "U A A A A A A T",
        ),
    ),
    "remove_member": Route(
        "DELETE",
        "/api/rooms/{room}/members/bob",
        _answers(
            "U F 204 204 204 204 F T",
            "N N 204 204 204 N N T",
            "N N 204 N F N N T",
            "U F 204 204 204 204 F T",
        ),
    ),
    "read": Route(
        "POST",
        "/api/rooms/{room}/read",
        _answers(
            "M M 200 200 200 M M T",
            "N N 200 200 200 N N T",
            "N N 200 N 200 N N T",
            "M M 200 200 200 M M T",
        ),
        json={"up_to": 1},
    ),
    "messages": Route("GET", "/api/rooms/{room}/messages", SEE),
    "messages_after": Route("GET", "/api/rooms/{room}/messages?after=0&limit=1", SEE),
    "messages_before": Route("GET", "/api/rooms/{room}/messages?before={message}&limit=5", SEE),
    "post": Route(
        "POST",
        "/api/rooms/{room}/messages",
        _answers(
            "201 201 201 201 201 201 201 T",
            "N N 201 201 201 N N T",
            "N N 201 N 201 N N T",
            "A A A A A A A T",
        ),
        json={"body": "a new message"},
    ),
    "message": Route("GET", ONE, SEE),
    "edit": Route(
        "PATCH",
        ONE,
        _answers(
            "S F 200 F F F F T",
            "N N 200 F F N N T",
            "N N 200 N F N N T",
            "S F A F F F F T",
        ),
        json={"body": "edited"},
    ),
    "delete": Route(
        "DELETE",
        ONE,
        _answers(
            "S F 204 204 204 204 F T",
            "N N 204 204 204 N N T",
            "N N 204 N F N N T",
            "S F A A A A F T",
        ),
    ),
    "history": Route(
        "GET",
        f"{ONE}/history",
        _answers(
            "F F F 200 200 200 F T",
            "N N F 200 200 N N T",
            "N N F N F N N T",
            "F F F 200 200 200 F T",
        ),
    ),
    "react": Route("PUT", f"{ONE}/reactions/{THUMBS_UP}", REACT),
    "unreact": Route("DELETE", f"{ONE}/reactions/{THUMBS_UP}", REACT),
    "presence": Route("GET", "/api/rooms/{room}/presence", SEE),
    # Catch-up names public rooms to follow; a private one not the caller's is ignored, as a
    # name that does not exist is (the same answer, byte for byte).
    "events": Route(
        "GET",
        "/api/events?after=0&rooms={room}",
        _answers(*(["200 200 200 200 200 200 200 T"] * 4)),
    ),
}


def outcome(response: httpx.Response) -> str:
    if response.status_code < 400:
        return str(response.status_code)
    return f"{response.status_code}:{response.json()['error']}"


def settings_for(world: World, directory: Path, **overrides: Any) -> Settings:
    return Settings(database_url=world.copy_to(directory), **{**UNLIMITED_RATES, **overrides})


def secrets_in(response: httpx.Response, world: World, *, caller: str) -> list[str]:
    """The text and names of the rooms `caller` is outside of, found in an answer to them."""
    kinds = [kind for kind, outsiders in OUTSIDERS.items() if caller in outsiders]
    secrets = [secret for kind in kinds for secret in (SECRETS[kind], world.rooms[kind])]
    text = _without_own_membership(response, world, caller=caller) + str(response.headers)
    return [secret for secret in secrets if secret in text]


def _without_own_membership(response: httpx.Response, world: World, *, caller: str) -> str:
    """The answer, less the catch-up's news of the caller's own joining and leaving: a
    removed member is told it (that is how a client that was away drops the room), and knew
    the room's name anyway. Its text, and everyone else's comings and goings, stay secret."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return response.text
    payload = response.json()
    if not isinstance(payload, dict) or "events" not in payload:
        return response.text
    username = CALLER_USERNAMES.get(caller)
    kept = [
        event
        for event in payload["events"]
        if not (
            event.get("type") in ("member_joined", "member_left")
            and (event.get("user") or {}).get("username") == username
        )
    ]
    return json.dumps({**payload, "events": kept}, ensure_ascii=False)


async def send(
    http: httpx.AsyncClient, world: World, route: Route, *, caller: str, kind: str, room: str
) -> httpx.Response:
    path = route.path.format(room=room, message=world.messages[kind]["bob"])
    return await http.request(route.method, path, headers=world.headers(caller), json=route.json)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("kind", ROOM_KINDS)
@pytest.mark.parametrize("name", ROUTES)
async def test_room_routes(
    seeded_world: World, tmp_path: Path, name: str, kind: str, caller: str
) -> None:
    route, world = ROUTES[name], seeded_world
    async with started_app(settings_for(world, tmp_path)) as app, client(app) as http:
        never_existed = await send(http, world, route, caller=caller, kind=kind, room=NO_SUCH_ROOM)
        response = await send(http, world, route, caller=caller, kind=kind, room=world.rooms[kind])
    assert outcome(response) == route.expected(kind, caller), response.text[:300]
    if caller in OUTSIDERS.get(kind, ()):
        assert (response.status_code, response.content) == (
            never_existed.status_code,
            never_existed.content,
        )
        assert secrets_in(response, world, caller=caller) == []


# ---- routes of no one room ----

WHOLE = {
    #                                 guest nonmember member moderator owner admin removed revoked
    "rooms": ("GET", "/api/rooms", None, "200 200 200 200 200 200 200 T"),
    "create_room": (
        "POST",
        "/api/rooms",
        {"name": "fresh", "visibility": "private"},
        "U 201 201 201 201 201 201 T",
    ),
    "dm": ("POST", "/api/dms", {"usernames": ["erin", "ada"]}, "U 200 200 200 200 200 200 T"),
    "general": ("GET", "/api/messages", None, "200 200 200 200 200 200 200 T"),
    "general_post": ("POST", "/api/messages", {"body": "hi"}, "201 201 201 201 201 201 201 T"),
    "events": ("GET", "/api/events?after=0", None, "200 200 200 200 200 200 200 T"),
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", WHOLE)
async def test_routes_of_no_one_room(
    seeded_world: World, tmp_path: Path, name: str, caller: str
) -> None:
    method, path, payload, answers = WHOLE[name]
    expected = dict(zip(CALLERS, answers.split(), strict=True))[caller]
    async with started_app(settings_for(seeded_world, tmp_path)) as app, client(app) as http:
        response = await http.request(
            method, path, headers=seeded_world.headers(caller), json=payload
        )
    assert outcome(response) == ANSWERS.get(expected, expected), response.text[:300]


VISIBLE = {
    "guest": {"general", "open-plan", "old-news"},
    "nonmember": {"general", "open-plan", "old-news"},
    "member": {"general", "open-plan", "old-news", SECRET_ROOM, DM},
    "moderator": {"general", "open-plan", "old-news", SECRET_ROOM},
    "owner": {"general", "open-plan", "old-news", SECRET_ROOM, DM},
    "admin": {"general", "open-plan", "old-news"},
    "removed": {"general", "open-plan", "old-news"},
}


@pytest.mark.parametrize("caller", VISIBLE)
async def test_room_list_shows_what_the_caller_may_see(
    seeded_world: World, tmp_path: Path, caller: str
) -> None:
    async with started_app(settings_for(seeded_world, tmp_path)) as app, client(app) as http:
        response = await http.get("/api/rooms", headers=seeded_world.headers(caller))
    names = {room["name"] for room in response.json()["rooms"]}
    expected = {seeded_world.rooms[DM] if name == DM else name for name in VISIBLE[caller]}
    assert names == expected


# ---- the leak check ----

LEAK_CALLERS = ("guest", "nonmember", "admin", "removed", "moderator")


async def test_nothing_of_a_private_room_reaches_an_outsider(
    seeded_world: World, tmp_path: Path
) -> None:
    """Every route, every room kind, asked by every outsider in one app (so what one attempt
    changed is there for the next); then their room lists, catch-up and general history. No
    answer carries the private room's or the DM's text or name."""
    world = seeded_world
    leaks: list[str] = []

    def check(label: str, response: httpx.Response, *, caller: str) -> None:
        found = secrets_in(response, world, caller=caller)
        if found:
            leaks.append(f"{label}: {found}")

    async with started_app(settings_for(world, tmp_path)) as app, client(app) as http:
        for caller in LEAK_CALLERS:
            kinds = [kind for kind in (PRIVATE, DM) if caller in OUTSIDERS[kind]]
            for name, route in ROUTES.items():
                for kind in kinds:
                    room = world.rooms[kind]
                    response = await send(http, world, route, caller=caller, kind=kind, room=room)
                    check(f"{caller} {name} {kind}", response, caller=caller)
            for path in ("/api/rooms", "/api/events?after=0", "/api/messages", "/api/users"):
                answer = await http.get(path, headers=world.headers(caller))
                check(f"{caller} {path}", answer, caller=caller)
            for kind in kinds:
                message = world.messages[kind]["bob"]
                public_room = world.rooms[PUBLIC]
                # A private message's id asked for in a public room: no such message there.
                check(
                    f"{caller} {kind} message by id in a public room",
                    await http.get(
                        f"/api/rooms/{public_room}/messages/{message}",
                        headers=world.headers(caller),
                    ),
                    caller=caller,
                )
    assert leaks == []


async def test_a_private_message_id_in_a_public_room_is_no_message(
    seeded_world: World, tmp_path: Path
) -> None:
    world = seeded_world
    public_room = world.rooms[PUBLIC]
    async with started_app(settings_for(world, tmp_path)) as app, client(app) as http:
        answers = {
            (response.status_code, response.content)
            for message in (world.messages[PRIVATE]["bob"], 10**9)
            for response in [
                await http.get(
                    f"/api/rooms/{public_room}/messages/{message}",
                    headers=world.headers("nonmember"),
                )
            ]
        }
    assert len(answers) == 1
    ((status, _),) = answers
    assert status == 404


# ---- edit window, and who may mention the whole room ----


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        pytest.param(None, "200", id="unset-always"),
        pytest.param(3600.0, "200", id="within-an-hour"),
        pytest.param(0.001, "403:edit_window_passed", id="window-passed"),
        pytest.param(0.0, "403:editing_disabled", id="zero-disables"),
    ],
)
async def test_the_author_edits_within_the_window(
    seeded_world: World, tmp_path: Path, window: float | None, expected: str
) -> None:
    world = seeded_world
    settings = settings_for(world, tmp_path, edit_window_seconds=window)
    path = f"/api/rooms/{world.rooms[PUBLIC]}/messages/{world.messages[PUBLIC]['bob']}"
    async with started_app(settings) as app, client(app) as http:
        response = await http.patch(path, headers=world.headers("member"), json={"body": "fixed"})
        after = await http.get(path, headers=world.headers("member"))
    assert outcome(response) == expected
    assert (after.json()["message"]["body"] == "fixed") is (expected == "200")


@pytest.mark.parametrize(
    ("author", "mentions_the_room"),
    [
        ("owner", True),
        ("moderator", True),
        ("admin", True),  # admins manage every room they can see (chat.rooms.policy)
        ("member", False),
        ("nonmember", False),
        ("guest", False),
    ],
)
async def test_only_owners_and_moderators_mention_the_room(
    seeded_world: World, tmp_path: Path, author: str, mentions_the_room: bool
) -> None:
    world = seeded_world
    room = world.rooms[PUBLIC]
    reader = "owner" if author == "member" else "member"
    async with started_app(settings_for(world, tmp_path)) as app, client(app) as http:
        posted = await http.post(
            f"/api/rooms/{room}/messages",
            headers=world.headers(author),
            json={"body": "@room the build is green", "author": "someone"},
        )
        assert posted.status_code == 201, posted.text
        view = await http.get(f"/api/rooms/{room}", headers=world.headers(reader))
    assert view.json()["room"]["mentions"] == (1 if mentions_the_room else 0)


# ---- guests, per CHAT_GUEST_ACCESS ----

# A guest's answers in the public room when guests may only read, and when they may not even
# read: then the API says "sign in" (401) for every room, and for names of no room alike.
GUEST_ACCESS = {
    "room": ("200", "S"),
    "update_room": ("F", "S"),
    "members": ("200", "S"),
    "add_member": ("U", "S"),
    "remove_member": ("U", "S"),
    "read": ("M", "S"),
    "messages": ("200", "S"),
    "messages_after": ("200", "S"),
    "messages_before": ("200", "S"),
    "post": ("S", "S"),
    "message": ("200", "S"),
    "edit": ("S", "S"),
    "delete": ("S", "S"),
    "history": ("F", "S"),
    "react": ("S", "S"),
    "unreact": ("S", "S"),
    "presence": ("200", "S"),
    "events": ("200", "S"),
}


@pytest.mark.parametrize("mode", ["read", "none"])
@pytest.mark.parametrize("name", GUEST_ACCESS)
async def test_guest_access(seeded_world: World, tmp_path: Path, name: str, mode: str) -> None:
    world, route = seeded_world, ROUTES[name]
    expected = GUEST_ACCESS[name][0 if mode == "read" else 1]
    settings = settings_for(world, tmp_path, guest_access=mode)
    async with started_app(settings) as app, client(app) as http:
        answers = {
            room: await send(http, world, route, caller="guest", kind=PUBLIC, room=room)
            for room in (world.rooms[PUBLIC], world.rooms[PRIVATE], NO_SUCH_ROOM)
        }
    assert outcome(answers[world.rooms[PUBLIC]]) == ANSWERS.get(expected, expected)
    private, missing = answers[world.rooms[PRIVATE]], answers[NO_SUCH_ROOM]
    assert (private.status_code, private.content) == (missing.status_code, missing.content)


def test_every_room_route_has_guest_access_rows() -> None:
    assert set(GUEST_ACCESS) == set(ROUTES)
