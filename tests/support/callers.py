"""One seeded database of people, credentials and rooms for the authorization tables.

Seeding hashes passwords (argon2) and goes through the real API, so it is done once per test
session into a template file; each test gets its own copy (`World.copy_to`), so a table row that
changes something (removes a member, deletes a message) cannot change the answer of another.

People (every password is PASSWORD):
  ada    admin (the first account, registered from loopback); in no room but general
  bob    member of every room below (and author of the messages the edit rows aim at)
  carol  moderator of the rooms; not in the DM
  dave   owner of the rooms (created them); in the DM
  erin   signed in, in no room but general (the "non-member")
  frank  was a member of every room, then removed (left the DM)
  gina   disabled after a session and a token were issued
  hal    a revoked API token and a signed-out session
Rooms: `open-plan` public, `secret-garden` private, the DM of bob, dave and frank, `old-news`
public and archived. Each holds a message by bob and one by dave; the private ones' text and
names are secrets the leak checks look for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text

from chat.db import create_engine
from chat.settings import Settings
from tests.support.asgi import client, copy_database, started_app
from tests.support.database import sqlite_url, upgrade

PASSWORD = "plum tree in winter"
SESSION_COOKIE = "chat_session"
XSRF = "fixed-form-token-for-the-tables"
FOREIGN_ORIGIN = "https://evil.example"

PUBLIC, PRIVATE, DM, ARCHIVED = "public", "private", "dm", "archived"
ROOM_KINDS = (PUBLIC, PRIVATE, DM, ARCHIVED)
NO_SUCH_ROOM = "no-such-room"
SECRET_ROOM = "secret-garden"
# Text only members of the private room and the DM ever see.
SECRETS = {PRIVATE: "the hedgehog sleeps under the rhubarb", DM: "the key is under the mat"}


@dataclass(slots=True)
class Person:
    username: str
    session: str = ""  # the session cookie's value
    token: str = ""  # a personal API token
    token_id: int = 0
    id: int = 0


@dataclass(slots=True)
class World:
    path: Path  # the seeded template database
    people: dict[str, Person] = field(default_factory=dict)
    rooms: dict[str, str] = field(default_factory=dict)  # kind -> room name
    # kind -> {"bob": message id, "dave": message id}
    messages: dict[str, dict[str, int]] = field(default_factory=dict)
    invite_id: int = 0  # a live invite, made by ada

    def copy_to(self, directory: Path) -> str:
        """A private copy of the seeded database; its URL."""
        target = directory / "chat.db"
        copy_database(self.path, target)
        return sqlite_url(target)

    def headers(self, caller: str) -> dict[str, str]:
        """The headers a kind of caller sends (see CALLERS)."""
        return caller_headers(self, caller)


# The kinds of caller, and what each sends. "member" is bob (by his session cookie).
CALLER_CREDENTIALS: dict[str, tuple[str, str]] = {
    "guest": ("", ""),
    "member": ("bob", "cookie"),
    "member_token": ("bob", "token"),
    "nonmember": ("erin", "cookie"),
    "moderator": ("carol", "cookie"),
    "owner": ("dave", "cookie"),
    "admin": ("ada", "cookie"),
    "removed": ("frank", "cookie"),
    "disabled": ("gina", "cookie"),
    "disabled_token": ("gina", "token"),
    "revoked_token": ("hal", "token"),
    "logged_out": ("hal", "cookie"),
    "cross_site": ("bob", "cross-site"),
    "no_form_token": ("bob", "no-form-token"),
}


def caller_headers(world: World, caller: str) -> dict[str, str]:
    username, how = CALLER_CREDENTIALS[caller]
    # Callers by cookie (and guests, who have a browser too) hold the form token of the page
    # they came from, so a form's CSRF check passes: the rows test who may do what; the
    # `no_form_token` and `cross_site` callers test the two cross-site defences.
    form_token = "" if how == "no-form-token" else f"_xsrf={XSRF}"
    if not username:
        return {"Cookie": form_token}
    person = world.people[username]
    if how == "token":
        return {"Authorization": f"Bearer {person.token}"}
    headers = {
        "Cookie": "; ".join(filter(None, [f"{SESSION_COOKIE}={person.session}", form_token]))
    }
    if how == "cross-site":
        headers["Origin"] = FOREIGN_ORIGIN
    return headers


def session_of(response: httpx.Response) -> str:
    value = response.cookies.get(SESSION_COOKIE)
    assert value, f"no session cookie in {response.status_code} {response.text[:200]}"
    return value


def seed(directory: Path) -> World:
    """Build the world in `directory` (outside any running event loop: Alembic runs its own)."""
    path = directory / "template.db"
    url = sqlite_url(path)
    upgrade(url)
    world = World(path)
    anyio.run(_seed_through_the_api, url, world)
    return world


async def _seed_through_the_api(url: str, world: World) -> None:
    async with started_app(Settings(database_url=url)) as app, client(app) as http:
        await _seed(http, world)


async def _seed(http: httpx.AsyncClient, world: World) -> None:
    for username in ("ada", "bob", "carol", "dave", "erin", "frank", "gina", "hal"):
        answer = await http.post(
            "/api/auth/register", json={"username": username, "password": PASSWORD}
        )
        assert answer.status_code == 201, answer.text
        person = Person(username, session=session_of(answer), id=answer.json()["user"]["id"])
        world.people[username] = person
        http.cookies.clear()
        created = await _call(http, world, username, "POST", "/api/tokens", payload={"name": "t"})
        person.token, person.token_id = created["token"], created["id"]
    assert (await _call(http, world, "ada", "GET", "/api/me"))["user"]["role"] == "admin"
    world.invite_id = (await _call(http, world, "ada", "POST", "/api/invites", payload={}))[
        "invite"
    ]["id"]

    for kind, name, visibility in (
        (PUBLIC, "open-plan", "public"),
        (PRIVATE, SECRET_ROOM, "private"),
        (ARCHIVED, "old-news", "public"),
    ):
        await _call(
            http,
            world,
            "dave",
            "POST",
            "/api/rooms",
            payload={"name": name, "visibility": visibility},
        )
        for username in ("bob", "carol", "frank"):
            await _call(http, world, "dave", "PUT", f"/api/rooms/{name}/members/{username}")
        world.rooms[kind] = name
    dm = await _call(
        http, world, "bob", "POST", "/api/dms", payload={"usernames": ["dave", "frank"]}
    )
    world.rooms[DM] = dm["room"]["name"]
    await _promote_carol(world)

    for kind in ROOM_KINDS:
        room = world.rooms[kind]
        text = SECRETS.get(kind, f"hello in {room}")
        world.messages[kind] = {
            author: (
                await _call(
                    http,
                    world,
                    author,
                    "POST",
                    f"/api/rooms/{room}/messages",
                    payload={"body": f"{text} (by {author})"},
                )
            )["id"]
            for author in ("bob", "dave")
        }
    for kind in (PUBLIC, PRIVATE, ARCHIVED):
        await _call(http, world, "dave", "DELETE", f"/api/rooms/{world.rooms[kind]}/members/frank")
    await _call(http, world, "frank", "DELETE", f"/api/rooms/{world.rooms[DM]}/members/frank")
    await _call(http, world, "dave", "PATCH", "/api/rooms/old-news", payload={"archived": True})

    # gina: disabled (her session and token end); hal: a revoked token, a signed-out session.
    await _call(http, world, "ada", "PATCH", "/api/users/gina", payload={"disabled": True})
    hal = world.people["hal"]
    await _call(http, world, "hal", "DELETE", f"/api/tokens/{hal.token_id}")
    signed_out = await http.post(
        "/api/auth/logout", headers={"Cookie": f"{SESSION_COOKIE}={hal.session}"}
    )
    assert signed_out.status_code == 204
    http.cookies.clear()


async def _promote_carol(world: World) -> None:
    """No route makes a moderator yet: the role is set in the database."""
    engine = create_engine(Settings(database_url=sqlite_url(world.path)))
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE memberships SET role = 'moderator' WHERE user_id = :user AND room_id "
                    "IN (SELECT id FROM rooms WHERE kind = 'room' AND name != 'general')"
                ),
                {"user": world.people["carol"].id},
            )
    finally:
        await engine.dispose()


async def _call(
    http: httpx.AsyncClient,
    world: World,
    username: str,
    method: str,
    path: str,
    *,
    payload: Any = None,
) -> Any:
    """A request as `username` (by session) that must succeed; its JSON answer (or None)."""
    content = json.dumps(payload).encode() if payload is not None else None
    headers = {"Cookie": f"{SESSION_COOKIE}={world.people[username].session}"}
    if content is not None:
        headers["Content-Type"] = "application/json"
    answer = await http.request(method, path, content=content, headers=headers)
    http.cookies.clear()
    assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
    return answer.json() if answer.content else None


@pytest.fixture(scope="session")
def seeded_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The people and rooms above, seeded once per test session (copy it per test)."""
    return seed(tmp_path_factory.mktemp("world"))
