"""Search through the API and the page of a real server, on both engines:
the query language, filters, Unicode, edits and deletes reflected at once, paging, and who may
find what (a permission table)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.test_api import assert_matches
from tests.support.live import LiveServer
from tests.support.postgres import BOTH_ENGINES

pytestmark = BOTH_ENGINES
PASSWORD = "correct horse battery staple"


class Chat:
    """One app; people are API tokens, so one client serves them all."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    def person(self, username: str) -> str:
        self.client.cookies.clear()
        response = self.client.post(
            "/api/auth/register", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        token = self.client.post("/api/tokens", json={"name": "tests"}).json()["token"]
        self.client.cookies.clear()
        self.tokens[username] = token
        return username

    def headers(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}

    def call(self, method: str, path: str, who: str | None, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=self.headers(who), **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def post(self, who: str | None, room: str, body: str) -> int:
        message = self.call("POST", f"/api/rooms/{room}/messages", who, json={"body": body})
        return int(message["id"])

    def room(self, who: str, name: str, visibility: str = "public") -> str:
        self.call("POST", "/api/rooms", who, json={"name": name, "visibility": visibility})
        return name

    def search(self, who: str | None, q: str, **params: Any) -> Any:
        response = self.client.get(
            "/api/search", params={"q": q, **params}, headers=self.headers(who)
        )
        assert response.status_code == 200, response.text
        return response.json()

    def ids(self, who: str | None, q: str, **params: Any) -> list[int]:
        return [hit["id"] for hit in self.search(who, q, **params)["results"]]

    def refused(self, who: str | None, q: str, **params: Any) -> Any:
        response = self.client.get(
            "/api/search", params={"q": q, **params}, headers=self.headers(who)
        )
        assert response.status_code in (400, 404), response.text
        assert set(response.json()) == {"error", "detail"}
        return response.json()


@pytest.fixture
def chat(server: LiveServer) -> Iterator[Chat]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield Chat(client)


def test_words_phrases_prefixes_and_exclusions(chat: Chat) -> None:
    ada = chat.person("ada")
    fox = chat.post(ada, "general", "The quick brown fox jumps over the lazy dog")
    dog = chat.post(ada, "general", "a lazy afternoon with the dog")
    deploy = chat.post(ada, "general", "deploying the new release tonight")
    assert chat.ids(ada, "lazy") == [dog, fox]  # newest first
    assert chat.ids(ada, "LAZY DOG") == [dog, fox]  # every word, any case
    assert chat.ids(ada, '"lazy dog"') == [fox]  # the words next to each other
    assert chat.ids(ada, '"dog lazy"') == []
    assert chat.ids(ada, "deploy*") == [deploy]
    assert chat.ids(ada, "deploy") == []  # whole tokens, no stemming
    assert chat.ids(ada, "lazy -fox") == [dog]
    assert chat.ids(ada, 'lazy -"brown fox"') == [dog]
    assert chat.ids(ada, "lazy -afternoon -jumps") == []


def test_results_are_message_objects_with_room_snippet_and_permalink(chat: Chat) -> None:
    ada = chat.person("ada")
    message_id = chat.post(ada, "general", "<script>alert(1)</script> lazy <b>bold</b> lazy")
    page = chat.search(ada, "lazy")
    assert_matches("SearchResults", page)  # the OpenAPI document's schema
    (hit,) = page["results"]
    assert hit["id"] == message_id
    assert hit["type"] == "message"
    assert hit["room"] == "general"
    assert hit["body"].startswith("<script>")  # the body is data, as in every message object
    assert hit["permalink"] == f"/r/general/m/{message_id}"
    assert hit["snippet"] == (
        "&lt;script&gt;alert(1)&lt;/script&gt; <mark>lazy</mark> "
        "&lt;b&gt;bold&lt;/b&gt; <mark>lazy</mark>"
    )


def test_filters_from_in_before_after(chat: Chat) -> None:
    ada, bob = chat.person("ada"), chat.person("bob")
    chat.room(ada, "ops")
    first = chat.post(ada, "general", "coffee time")
    second = chat.post(bob, "general", "coffee please")
    third = chat.post(bob, "ops", "coffee machine is broken")
    assert chat.ids(ada, "coffee") == [third, second, first]
    assert chat.ids(ada, "coffee from:bob") == [third, second]
    assert chat.ids(ada, "coffee", **{"from": "bob"}) == [third, second]
    assert chat.ids(ada, "coffee in:ops") == [third]
    assert chat.ids(ada, "coffee", room="general") == [second, first]
    assert chat.ids(ada, "from:bob in:general") == [second]  # filters alone
    assert chat.ids(ada, "", room="general", **{"from": "bob"}) == [second]
    assert chat.refused(ada, "coffee in:ops", room="general")["error"] == "invalid_query"
    assert chat.ids(ada, "coffee", before=str(third)) == [second, first]
    assert chat.ids(ada, "coffee", after=str(first)) == [third, second]
    assert chat.ids(ada, "coffee", after="2000-01-01", before="2999-01-01") == [
        third,
        second,
        first,
    ]
    assert chat.ids(ada, "coffee", before="2000-01-01") == []
    assert chat.ids(ada, "coffee from:nobody") == []
    assert chat.refused(ada, "coffee in:nowhere")["error"] == "not_found"


def test_paging_with_the_cursor_newest_first_and_by_relevance(chat: Chat) -> None:
    ada = chat.person("ada")
    ids = [chat.post(ada, "general", f"note {'note ' * (n % 3)}number {n}") for n in range(7)]
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        page = chat.search(ada, "note", limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [hit["id"] for hit in page["results"]]
        cursor = page["next_cursor"]
        assert page["has_more"] == (cursor is not None)
        if cursor is None:
            break
    assert seen == ids[::-1]
    ranked: list[int] = []
    cursor = None
    for _ in range(5):
        params = {"sort": "relevance", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = chat.search(ada, "note", **params)
        ranked += [hit["id"] for hit in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(ranked) == sorted(ids)
    # Three "note"s in a short message rank above one.
    assert ranked[0] in {ids[2], ids[5]}
    assert chat.refused(ada, "note", cursor="bm90IGEgY3Vyc29y")["error"] == "invalid_cursor"
    assert chat.refused(ada, "note", sort="random")["error"] == "invalid_sort"
    assert chat.refused(ada, "note", limit="0")["error"] == "invalid_limit"


def test_unicode_accents_and_emoji(chat: Chat) -> None:
    ada = chat.person("ada")
    cafe = chat.post(ada, "general", "Un café à Zürich 🎉 ÉCOLE")
    rocket = chat.post(ada, "general", "ship it 🚀 now")
    assert chat.ids(ada, "café") == [cafe]
    assert chat.ids(ada, "CAFÉ zürich") == [cafe]
    assert chat.ids(ada, "école") == [cafe]
    assert chat.ids(ada, "cafe") == []  # accents are part of the token (documented)
    assert chat.ids(ada, "ship 🚀") == [rocket]  # emoji are not words: ignored in a query
    assert chat.refused(ada, "🚀")["error"] == "invalid_query"


def test_edits_and_deletes_are_reflected_at_once(chat: Chat) -> None:
    ada = chat.person("ada")
    message_id = chat.post(ada, "general", "the password is swordfish")
    assert chat.ids(ada, "swordfish") == [message_id]
    chat.call("PATCH", f"/api/rooms/general/messages/{message_id}", ada, json={"body": "oops"})
    assert chat.ids(ada, "swordfish") == []
    assert chat.ids(ada, "oops") == [message_id]
    chat.call("DELETE", f"/api/rooms/general/messages/{message_id}", ada)
    assert chat.ids(ada, "oops") == []
    assert chat.ids(ada, "swordfish") == []
    assert chat.ids(ada, "from:ada") == []  # a tombstone is no result either


def test_malformed_queries_are_400_with_the_error_shape(chat: Chat) -> None:
    ada = chat.person("ada")
    chat.post(ada, "general", "near a thing")
    for q in ('"open', "*", "a*", "NEAR(a b)", "foo*bar", "-", "", "x" * 10_000, "a " * 40):
        error = chat.refused(ada, q)
        assert error["error"] == "invalid_query", q
        assert error["detail"]
    assert chat.ids(ada, '"NEAR(" near') != []  # quoted, it is only text


# ---- who may find what ----

VIEWERS = ("guest", "outsider", "member", "removed")


@pytest.fixture
def rooms(chat: Chat) -> dict[str, int]:
    """A public room, a private room and a DM, each with one message saying "secretword"; the
    `member` belongs to all three, `removed` belonged to all three and was taken out."""
    owner = chat.person("owner")
    for name in ("outsider", "member", "removed"):
        chat.person(name)
    chat.room(owner, "lobby", "public")
    chat.room(owner, "vault", "private")
    for who in ("member", "removed"):
        chat.call("PUT", f"/api/rooms/lobby/members/{who}", who)
        chat.call("PUT", f"/api/rooms/vault/members/{who}", owner)
    dm = chat.call("POST", "/api/dms", owner, json={"usernames": ["member", "removed"]})
    dm_name = dm["room"]["name"]
    ids = {
        "public": chat.post(owner, "lobby", "secretword in public"),
        "private": chat.post(owner, "vault", "secretword in private"),
        "dm": chat.post(owner, dm_name, "secretword in a dm"),
    }
    for room in ("lobby", "vault", dm_name):
        chat.call("DELETE", f"/api/rooms/{room}/members/removed", "removed")
    return ids


# What each viewer finds: public rooms are readable by everyone (guests included, as
# CHAT_GUEST_ACCESS=post allows); private rooms and DMs only by their members now.
EXPECTED = {
    "guest": {"public"},
    "outsider": {"public"},
    "member": {"public", "private", "dm"},
    "removed": {"public"},
}


def test_permission_table(chat: Chat, rooms: dict[str, int]) -> None:
    found = {
        viewer: {
            kind
            for kind, message_id in rooms.items()
            if message_id in chat.ids(None if viewer == "guest" else viewer, "secretword")
        }
        for viewer in VIEWERS
    }
    assert found == EXPECTED
    # The room list agrees (the same policy decides both).
    listed = {room["name"]: room for room in chat.call("GET", "/api/rooms", "member")["rooms"]}
    assert listed["vault"]["member"] is True
    assert listed["vault"]["unread"] == 1
    assert "vault" not in {
        room["name"] for room in chat.call("GET", "/api/rooms", "removed")["rooms"]
    }
    for viewer in ("guest", "outsider", "removed"):
        who = None if viewer == "guest" else viewer
        # Naming the room is the same 404 as a room that does not exist.
        assert chat.refused(who, "secretword in:vault") == chat.refused(who, "x in:nosuchroom")


def test_private_matches_are_not_counted(chat: Chat, rooms: dict[str, int]) -> None:
    before = chat.search("outsider", "secretword", limit=1)
    for _ in range(3):
        chat.post("owner", "vault", "secretword again")
    after = chat.search("outsider", "secretword", limit=1)
    assert after == before  # same results, same has_more, same cursor
    assert after["has_more"] is False


# ---- the page ----


def test_search_page_groups_by_room_and_loads_more(chat: Chat) -> None:
    ada = chat.person("ada")
    chat.room(ada, "ops")
    for n in range(3):
        chat.post(ada, "general", f"pizza number {n} <i>")
    chat.post(ada, "ops", "pizza in ops")
    page = chat.client.get("/search", params={"q": "pizza", "limit": "3"})
    assert page.status_code == 200
    html = page.text
    assert '<form class="search" action="/search" role="search">' in html
    assert html.count('class="search-room"') == 2
    assert "<mark>pizza</mark> number 2 &lt;i&gt;" in html
    assert 'href="/r/general/m/' in html
    assert 'id="load-more"' in html
    more = html.split('id="load-more" href="')[1].split('"')[0].replace("&amp;", "&")
    rest = chat.client.get(more)
    assert rest.status_code == 200
    assert "number 0" in rest.text
    assert 'id="load-more"' not in rest.text
    refused = chat.client.get("/search", params={"q": '"open'})
    assert refused.status_code == 400
    assert "Unbalanced quotes" in refused.text
