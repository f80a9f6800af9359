"""The rooms pages without JavaScript, and the permalink API they stand on: real uvicorn over a
migrated SQLite file, forms posted as a browser without JavaScript posts them (urlencoded, with
the page's token, following no redirects)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.live import LiveServer

PASSWORD = "plum tree in winter"


class Person:
    """A browser without JavaScript: cookies kept, forms posted with the page's token."""

    def __init__(self, server: LiveServer, username: str | None = None) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=10, follow_redirects=False)
        self.username = username
        if username is not None:
            answer = self.http.post(
                "/api/auth/register", json={"username": username, "password": PASSWORD}
            )
            assert answer.status_code == 201, answer.text

    def get(self, path: str, **params: object) -> httpx.Response:
        return self.http.get(path, params=params or None)

    def submit(self, page: str, action: str, **fields: str) -> httpx.Response:
        token = re.search(r'name="_xsrf" value="([^"]+)"', self.get(page).text)
        assert token, f"{page} has no form token"
        return self.http.post(action, data={"_xsrf": token.group(1), **fields})

    def api(self, method: str, path: str, **json: object) -> httpx.Response:
        return self.http.request(method, path, json=json or None)

    def close(self) -> None:
        self.http.close()


People = Callable[..., Person]


@pytest.fixture
def people(server: LiveServer) -> Iterator[People]:
    opened: list[Person] = []

    def factory(username: str | None = None) -> Person:
        opened.append(Person(server, username))
        return opened[-1]

    yield factory
    for person in opened:
        person.close()


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


def message_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<div class="message[^"]*" id="m(\d+)"', html)]


def room_list(html: str) -> dict[str, str]:
    """Each room list entry's <li> markup, by room name."""
    start = html.index('<nav id="rooms"')
    nav = html[start : html.index("</nav>", start)]
    entries = re.findall(r'(<li class="room[^"]*" data-room="([^"]+)".*?</li>)', nav, re.S)
    return {name: entry for entry, name in entries}


def make_room(owner: Person, name: str, visibility: str = "public") -> None:
    answer = owner.api("POST", "/api/rooms", name=name, visibility=visibility)
    assert answer.status_code == 201, answer.text


# ---- reading rooms ----


def test_a_room_page_has_its_list_header_and_messages(people: People) -> None:
    ada = people("ada")
    make_room(ada, "ops")
    ada.api("PATCH", "/api/rooms/ops", title="Operations", topic="pagers <and> coffee")
    ada.api("POST", "/api/rooms/ops/messages", body="in ops")
    ada.api("POST", "/api/messages", body="in general")

    page = ada.get("/r/ops")
    assert page.status_code == 200
    html = page.text
    assert re.search(
        r'<body class="chat-page"[^>]* data-api-messages="/api/rooms/ops/messages"', html
    )
    assert re.search(r'data-room="ops" data-room-id="\d+"', html)
    assert 'data-socket-path="/chatsocket"' in html
    entries = room_list(html)
    assert set(entries) == {"general", "ops"}
    assert 'href="/r/ops" aria-current="page">Operations</a>' in entries["ops"]
    assert "aria-current" not in entries["general"]
    header = html[
        html.index('<header id="room-header"') : html.index(
            "</header>", html.index('<header id="room-header"')
        )
    ]
    assert '<h2 class="room-title">Operations' in header
    assert '<p class="room-topic">pagers &lt;and&gt; coffee</p>' in header
    assert 'href="/r/ops/members">1 member</a>' in header
    assert "in ops" in html and "in general" not in html
    assert 'action="/r/ops/messages"' in html
    assert '<input type="hidden" name="room" value="ops">' in html

    home = ada.get("/").text  # `/` is general, its form the one it always was
    assert "in general" in home and "in ops" not in home
    assert 'action="/a/message/new"' in home
    assert 'data-api-messages="/api/rooms/general/messages"' in home
    assert 'href="/r/general" aria-current="page"' in home


def test_unread_and_mention_counts_in_the_room_list(people: People) -> None:
    ada, bob = people("ada"), people("bob")
    make_room(ada, "ops")
    bob.api("PUT", "/api/rooms/ops/members/bob")
    bob.get("/r/ops")
    ada.api("POST", "/api/rooms/ops/messages", body="one")
    ada.api("POST", "/api/rooms/ops/messages", body="two, @bob")

    entries = room_list(bob.get("/").text)
    assert 'class="room has-unread"' in entries["ops"]
    assert re.search(r'<span class="unread-count">2<', entries["ops"])
    assert re.search(r'<span class="mention-count">@1<', entries["ops"])
    assert '<span class="unread-count" hidden></span>' in entries["general"]
    assert '<span class="mention-count" hidden></span>' in entries["general"]

    bob.get("/r/ops")  # seeing the newest page reads it
    entries = room_list(bob.get("/").text)
    assert "has-unread" not in entries["ops"]
    assert bob.api("GET", "/api/rooms/ops").json()["room"]["unread"] == 0


def test_an_older_page_does_not_mark_the_room_read(people: People, server: LiveServer) -> None:
    ada, bob = people("ada"), people("bob")
    make_room(ada, "ops")
    bob.api("PUT", "/api/rooms/ops/members/bob")
    per_page = server.settings.page_messages
    ids = [
        ada.api("POST", "/api/rooms/ops/messages", body=f"n{n}").json()["id"]
        for n in range(per_page + 5)
    ]
    older = bob.get("/r/ops", before=ids[-3])
    assert older.status_code == 200
    assert message_ids(older.text)[-1] == ids[-4]
    assert bob.api("GET", "/api/rooms/ops").json()["room"]["unread"] == per_page + 5
    bob.get("/r/ops")
    assert bob.api("GET", "/api/rooms/ops").json()["room"]["unread"] == 0


def test_paging_back_and_forward_without_javascript(people: People, server: LiveServer) -> None:
    ada = people("ada")
    per_page = server.settings.page_messages
    ids = [ada.api("POST", "/api/messages", body=f"n{n}").json()["id"] for n in range(per_page + 7)]
    newest = ada.get("/r/general").text
    assert message_ids(newest) == ids[7:]
    older_link = re.search(r'href="(/r/general\?before=\d+)">Older messages', newest)
    assert older_link and "pager-newer" not in newest
    older = ada.get(older_link.group(1)).text
    assert message_ids(older) == ids[:7]
    assert "Older messages</a>" not in older
    newer_link = re.search(r'href="(/r/general\?after=\d+)">Newer messages', older)
    assert newer_link
    assert message_ids(ada.get(newer_link.group(1)).text) == ids[7 : 7 + per_page]
    refused = ada.get("/r/general", before="x")
    assert refused.status_code == 400
    assert 'id="form-error"' in refused.text and message_ids(refused.text) == ids[7:]


def test_day_separators_between_days(people: People, server: LiveServer) -> None:
    ada = people("ada")
    ids = [ada.api("POST", "/api/messages", body=f"n{n}").json()["id"] for n in range(4)]
    database = server.settings.database_url.split("///", 1)[1]
    with sqlite3.connect(database) as connection:
        for message_id, day in zip(ids, ["2026-01-02", "2026-01-02", "2026-03-04"], strict=False):
            connection.execute(
                "UPDATE messages SET created_at = ? || substr(created_at, 11), "
                "version = version + 1 WHERE id = ?",
                (day, message_id),
            )
    html = ada.get("/").text
    days = re.findall(
        r'<div class="day-separator" data-day="([\d-]+)"><time datetime="\1">([^<]+)</time>', html
    )
    today = days[-1][0]
    assert days == [
        ("2026-01-02", "Friday 2 January 2026"),
        ("2026-03-04", "Wednesday 4 March 2026"),
        (today, days[-1][1]),
    ]
    inbox = html[html.index('id="inbox"') :]
    assert inbox.index('data-day="2026-03-04"') < inbox.index(f'id="m{ids[2]}"')
    assert inbox.index(f'id="m{ids[1]}"') < inbox.index('data-day="2026-03-04"')


# ---- what does not exist for you ----


def missing(person: Person, path: str) -> str:
    page = person.get(path)
    assert page.status_code == 404, (path, page.status_code)
    return page.text


@pytest.mark.parametrize("kind", ["private", "dm"])
def test_a_room_not_yours_reads_exactly_as_one_that_never_existed(
    people: People, kind: str
) -> None:
    ada, bob, eve, guest = people("ada"), people("bob"), people("eve"), people()
    if kind == "private":
        make_room(ada, "secret", "private")
        ada.api("PUT", "/api/rooms/secret/members/bob")
        name = "secret"
    else:
        name = ada.api("POST", "/api/dms", usernames=["bob"]).json()["room"]["name"]
    said = ada.api("POST", f"/api/rooms/{name}/messages", body="between us").json()["id"]
    assert "between us" in bob.get(f"/r/{name}").text
    assert bob.api("DELETE", f"/api/rooms/{name}/members/bob").status_code == 204  # removed

    for outsider in (guest, eve, bob):
        for path in (
            f"/r/{name}",
            f"/r/{name}?before=999",
            f"/r/{name}/m/{said}",
            f"/r/{name}/members",
        ):
            private = missing(outsider, path)
            never = missing(outsider, path.replace(name, "never-was"))
            assert private.replace(name, "never-was") == never
            assert "between us" not in private
        assert f'data-room="{name}"' not in outsider.get("/").text
        for action in ("messages", "join", "leave", "members"):
            refused = outsider.submit("/", f"/r/{name}/{action}", body="let me", username="eve")
            assert refused.status_code == 404
    assert [
        m["body"] for m in ada.api("GET", f"/api/rooms/{name}/messages").json()["messages"]
    ] == ["between us"]


def test_guests_where_guests_may_not_read_get_the_same_404(make_server: ServerFactory) -> None:
    server = make_server(guest_access="none")
    guest = Person(server)
    try:
        assert guest.get("/r/general").status_code == 404
        assert guest.get("/r/general").text.replace("general", "nowhere") == missing(
            guest, "/r/nowhere"
        )
        assert guest.get("/").status_code == 303  # as before: to the sign-in page
    finally:
        guest.close()


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
