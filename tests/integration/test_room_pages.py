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

    def __init__(self, server: LiveServer) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=10, follow_redirects=False)

    def register(self, username: str) -> None:
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
        opened.append(Person(server))
        if username is not None:
            opened[-1].register(username)
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
            f"/r/{name}/m/{said}/edit",
            f"/r/{name}/m/{said}/delete",
            f"/r/{name}/members",
        ):
            private = missing(outsider, path)
            never = missing(outsider, path.replace(name, "never-was"))
            assert private.replace(name, "never-was") == never
            assert "between us" not in private
        assert f'data-room="{name}"' not in outsider.get("/").text
        for action in (
            "messages",
            "join",
            "leave",
            "members",
            f"m/{said}/edit",
            f"m/{said}/delete",
        ):
            refused = outsider.submit("/", f"/r/{name}/{action}", body="let me", username="eve")
            assert refused.status_code == 404, action
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


# ---- forms ----


def form_error(html: str) -> str:
    found = re.search(r'<p id="form-error" class="form-error" role="alert">([^<]*)</p>', html)
    return found.group(1) if found else ""


def test_post_to_a_room_redirects_back_and_refusals_stay_on_the_page(people: People) -> None:
    ada = people("ada")
    make_room(ada, "ops")
    posted = ada.submit("/r/ops", "/r/ops/messages", body="from the form")
    assert (posted.status_code, posted.headers["location"]) == (303, "/r/ops")
    assert "from the form" in ada.get("/r/ops").text
    assert "from the form" not in ada.get("/").text

    empty = ada.submit("/r/ops", "/r/ops/messages", body="   ")
    assert empty.status_code == 400 and form_error(empty.text)
    too_long = ada.submit("/r/ops", "/r/ops/messages", body="z" * 2001)
    assert too_long.status_code == 400 and "z" * 2001 + "</textarea>" in too_long.text
    assert 'action="/r/ops/messages"' in too_long.text
    forged = ada.http.post("/r/ops/messages", data={"body": "forged", "_xsrf": "nope"})
    assert forged.status_code == 403 and ">forged</textarea>" in forged.text
    ada.api("PATCH", "/api/rooms/ops", archived=True)
    archived = ada.submit("/r/ops", "/r/ops/messages", body="too late")
    assert archived.status_code == 403 and "archived" in form_error(archived.text)
    bodies = [m["body"] for m in ada.api("GET", "/api/rooms/ops/messages").json()["messages"]]
    assert bodies == ["from the form"]


def test_the_old_form_route_still_posts_to_general(people: People) -> None:
    guest = people()
    posted = guest.submit("/", "/a/message/new", body="old route", author="kim", next="/")
    assert (posted.status_code, posted.headers["location"]) == (303, "/")
    assert "old route" in guest.get("/").text


def test_create_join_and_leave(people: People) -> None:
    ada, bob = people("ada"), people("bob")
    taken = ada.submit("/rooms/new", "/rooms/new", name="general", visibility="public")
    assert taken.status_code == 409 and "taken" in form_error(taken.text)
    bad = ada.submit("/rooms/new", "/rooms/new", name="Not A Slug!", title="Kept <b>")
    assert bad.status_code == 400 and 'value="Kept &lt;b&gt;"' in bad.text
    made = ada.submit("/rooms/new", "/rooms/new", name="ops", title="Ops", visibility="private")
    assert (made.status_code, made.headers["location"]) == (303, "/r/ops")
    assert ada.get("/r/ops").status_code == 200
    assert bob.get("/r/ops").status_code == 404
    assert bob.get("/rooms/new").status_code == 200
    assert people().get("/rooms/new").status_code == 303  # a guest is sent to sign in

    ada.submit("/rooms/new", "/rooms/new", name="lobby", visibility="public")
    assert "Join</button>" in bob.get("/r/lobby").text
    joined = bob.submit("/r/lobby", "/r/lobby/join")
    assert (joined.status_code, joined.headers["location"]) == (303, "/r/lobby")
    assert "Join</button>" not in bob.get("/r/lobby").text
    assert 'member-username">@bob<' in bob.get("/r/lobby/members").text
    left = bob.submit("/r/lobby/members", "/r/lobby/leave")
    assert left.status_code == 303
    assert 'member-username">@bob<' not in bob.get("/r/lobby/members").text


def test_owners_add_members_others_may_not(people: People) -> None:
    people("first")  # the first account is an admin: these are not
    ada, bob, cy = people("ada"), people("bob"), people("cy")
    make_room(ada, "ops", "private")
    assert 'id="add-member-form"' in ada.get("/r/ops/members").text
    added = ada.submit("/r/ops/members", "/r/ops/members", username="bob")
    assert (added.status_code, added.headers["location"]) == (303, "/r/ops/members")
    assert bob.get("/r/ops").status_code == 200
    assert 'id="add-member-form"' not in bob.get("/r/ops/members").text
    refused = bob.submit("/r/ops/members", "/r/ops/members", username="cy")
    assert refused.status_code == 403 and form_error(refused.text)
    nobody = ada.submit("/r/ops/members", "/r/ops/members", username="nobody")
    assert nobody.status_code == 404 and 'value="nobody"' in nobody.text
    assert cy.get("/r/ops").status_code == 404


def test_a_direct_message_is_found_again_not_duplicated(people: People) -> None:
    ada, bob = people("ada"), people("bob")
    offer = ada.get("/dm/bob")
    assert offer.status_code == 200 and 'action="/dm/bob"' in offer.text
    assert ada.get("/api/rooms").json()["rooms"][-1]["kind"] != "dm"  # a GET starts nothing
    started = ada.submit("/dm/bob", "/dm/bob")
    assert started.status_code == 303
    room = started.headers["location"]
    assert re.fullmatch(r"/r/dm-\d+-\d+", room)
    assert ada.get("/dm/bob").headers["location"] == room
    assert bob.get("/dm/ada").headers["location"] == room
    assert ada.submit("/", "/dm/bob").headers["location"] == room
    assert ada.get("/dm", username="@Bob").headers["location"] == "/dm/bob"
    dm_page = bob.get(room).text
    assert "aria-current" in room_list(dm_page)[room.removeprefix("/r/")]
    assert ">ada</a>" in room_list(dm_page)[room.removeprefix("/r/")]  # titled by the other
    assert ada.get("/dm/nobody").status_code == 404
    assert people().get("/dm/bob").status_code == 303


def test_edit_and_delete_your_message_through_forms(people: People) -> None:
    people("first")  # the first account is an admin: ada and bob are not
    ada, bob = people("ada"), people("bob")
    mine = ada.api("POST", "/api/messages", body="tpyo").json()["id"]
    theirs = bob.api("POST", "/api/messages", body="bob's").json()["id"]
    home = ada.get("/").text
    assert f'href="/r/general/m/{mine}/edit"' in home
    assert f"/m/{theirs}/edit" not in home and f"/m/{theirs}/delete" not in home

    form = ada.get(f"/r/general/m/{mine}/edit")
    assert form.status_code == 200 and ">tpyo</textarea>" in form.text
    saved = ada.submit(f"/r/general/m/{mine}/edit", f"/r/general/m/{mine}/edit", body="typo")
    assert (saved.status_code, saved.headers["location"]) == (
        303,
        f"/r/general/m/{mine}#m{mine}",
    )
    empty = ada.submit(f"/r/general/m/{mine}/edit", f"/r/general/m/{mine}/edit", body=" ")
    assert empty.status_code == 400 and form_error(empty.text)
    assert bob.get(f"/r/general/m/{mine}/edit").status_code == 403
    stolen = bob.submit("/", f"/r/general/m/{mine}/edit", body="mine now")
    assert stolen.status_code == 403

    confirm = ada.get(f"/r/general/m/{mine}/delete")
    assert confirm.status_code == 200 and "typo" in confirm.text
    refused = bob.submit("/", f"/r/general/m/{mine}/delete")
    assert refused.status_code == 403
    deleted = ada.submit(f"/r/general/m/{mine}/delete", f"/r/general/m/{mine}/delete")
    assert (deleted.status_code, deleted.headers["location"]) == (303, "/r/general")
    stored = {m["id"]: m for m in ada.api("GET", "/api/messages").json()["messages"]}
    assert stored[mine]["deleted"] and stored[mine]["body"] == ""
    assert stored[theirs]["body"] == "bob's"
    assert ada.get("/r/general/m/999999/edit").status_code == 404


def test_moderators_delete_any_message(people: People) -> None:
    people("first")  # the first account is an admin: ada owns the room, no more
    ada, bob = people("ada"), people("bob")
    make_room(ada, "ops")
    said = bob.api("POST", "/api/rooms/ops/messages", body="spam").json()["id"]
    assert f"/r/ops/m/{said}/delete" in ada.get("/r/ops").text
    removed = ada.submit(f"/r/ops/m/{said}/delete", f"/r/ops/m/{said}/delete")
    assert removed.status_code == 303
    assert "spam" not in ada.get("/r/ops").text


def test_a_permalink_page_centres_and_marks_the_message(people: People, server: LiveServer) -> None:
    ada = people("ada")
    per_page = server.settings.page_messages
    ids = [ada.api("POST", "/api/messages", body=f"n{n}").json()["id"] for n in range(per_page * 2)]
    target = ids[per_page]
    page = ada.get(f"/r/general/m/{target}")
    assert page.status_code == 200
    shown = message_ids(page.text)
    assert target in shown and shown[0] < target < shown[-1]
    assert f'<div class="message highlighted" id="m{target}"' in page.text
    assert page.text.count("highlighted") == 1
    assert "Older messages</a>" in page.text and "Newer messages</a>" in page.text
    elsewhere = ada.get(f"/r/ops/m/{target}")
    assert elsewhere.status_code == 404
    make_room(ada, "ops")
    assert ada.get(f"/r/ops/m/{target}").status_code == 404  # not a message of that room
    assert ada.get("/r/general/m/0x10").status_code == 404


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
