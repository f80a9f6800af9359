"""Signed-in people driving a live server through its JSON API and its socket, with bounded
waits: what the change-log, away-and-back and multi-node tests act and observe through.

Synchronous on purpose (httpx.Client, websockets' sync client): every read takes a timeout, so
no test can block forever, and a test reads top to bottom like the story it tells.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

PASSWORD = "a long and unusual passphrase 7"
HTTP_TIMEOUT_S = 10.0
WAIT_S = 10.0

Frame = dict[str, Any]


class Person:
    """An account on a server (registered through the API) with its own cookie jar."""

    def __init__(self, base_url: str, username: str) -> None:
        self.username = username
        self.http = httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S)
        response = self.http.post(
            "/api/auth/register", json={"username": username, "password": PASSWORD}
        )
        if response.status_code != 201:
            self.http.close()
            raise AssertionError(f"registering {username!r}: {response.text}")
        self.id: int = response.json()["user"]["id"]
        self.cookie: str = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())

    def on(self, base_url: str) -> httpx.Client:
        """An HTTP client for another node of the same cluster, with this person's cookie."""
        return httpx.Client(
            base_url=base_url, timeout=HTTP_TIMEOUT_S, headers={"Cookie": self.cookie}
        )

    def close(self) -> None:
        self.http.close()

    # ---- rooms ----

    def create_room(self, name: str, *, visibility: str = "public") -> None:
        response = self.http.post("/api/rooms", json={"name": name, "visibility": visibility})
        assert response.status_code == 201, response.text

    def add(self, room: str, person: Person) -> None:
        response = self.http.put(f"/api/rooms/{room}/members/{person.username}")
        assert response.status_code in (200, 201), response.text

    def remove(self, room: str, person: Person) -> None:
        response = self.http.delete(f"/api/rooms/{room}/members/{person.username}")
        assert response.status_code == 204, response.text

    def mark_read(self, room: str, up_to: int) -> None:
        response = self.http.post(f"/api/rooms/{room}/read", json={"up_to": up_to})
        assert response.status_code == 200, response.text

    # ---- messages ----

    def post(self, room: str, body: str, *, reply_to: int | None = None) -> Frame:
        payload: dict[str, Any] = {"body": body}
        if reply_to is not None:
            payload["reply_to"] = reply_to
        response = self.http.post(f"/api/rooms/{room}/messages", json=payload)
        assert response.status_code == 201, response.text
        message: Frame = response.json()
        return message

    def edit(self, room: str, message_id: int, body: str) -> None:
        response = self.http.patch(f"/api/rooms/{room}/messages/{message_id}", json={"body": body})
        assert response.status_code == 200, response.text

    def delete(self, room: str, message_id: int) -> None:
        response = self.http.delete(f"/api/rooms/{room}/messages/{message_id}")
        assert response.status_code == 204, response.text

    def react(self, room: str, message_id: int, emoji: str, *, on: bool = True) -> None:
        path = f"/api/rooms/{room}/messages/{message_id}/reactions/{emoji}"
        response = self.http.put(path) if on else self.http.delete(path)
        assert response.status_code == 204, response.text

    def history(self, room: str) -> list[Frame]:
        """Every message of a room, oldest first, paging back with `before` as a client does."""
        messages: list[Frame] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            response = self.http.get(f"/api/rooms/{room}/messages", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            messages[:0] = page["messages"]
            if not page["has_older"]:
                return messages
            params = {"limit": 100, "before": page["older_cursor"]}

    # ---- the change log ----

    def latest_seq(self) -> int:
        """The newest seq (a catch-up from a cursor far in the future answers it)."""
        answer = self.events(after=2**62)
        assert answer["reload"] is True, answer
        cursor: int = answer["cursor"]
        return cursor

    def events(self, *, after: int, **params: Any) -> Frame:
        response = self.http.get("/api/events", params={"after": after, **params})
        assert response.status_code == 200, response.text
        answer: Frame = response.json()
        return answer

    def socket(self, ws_url: str, origin: str) -> Socket:
        return Socket(ws_url, origin=origin, cookie=self.cookie)


class Socket:
    """One `/chatsocket` connection that keeps every frame it reads, in order."""

    def __init__(self, ws_url: str, *, origin: str, cookie: str | None = None) -> None:
        headers = {"Origin": origin}
        if cookie:
            headers["Cookie"] = cookie
        # Entered at once: websockets 17 warns about a connection used outside `with`.
        self.connection: ClientConnection = connect(
            ws_url, additional_headers=headers, open_timeout=10, close_timeout=2
        ).__enter__()
        self.frames: list[Frame] = []

    def send(self, payload: Frame) -> None:
        self.connection.send(json.dumps(payload))

    def wait_for(self, matches: Callable[[Frame], bool], within: float = WAIT_S) -> Frame:
        """Read until a frame matches (keeping every frame read); fail after `within` s."""
        for frame in self.frames:
            if matches(frame):
                return frame
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching frame within {within}s; got {self.frames[-5:]}")
            try:
                raw = self.connection.recv(timeout=left)
            except TimeoutError:
                continue
            frame = json.loads(raw)
            self.frames.append(frame)
            if matches(frame):
                return frame

    def drain(self, quiet: float = 0.3) -> list[Frame]:
        """Read whatever arrives until nothing has for `quiet` seconds; the frames read."""
        start = len(self.frames)
        while True:
            try:
                raw = self.connection.recv(timeout=quiet)
            except TimeoutError:
                return self.frames[start:]
            except ConnectionClosed:
                return self.frames[start:]
            self.frames.append(json.loads(raw))

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Socket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def people_on(base_url: str, *names: str) -> Iterator[dict[str, Person]]:
    """`boss`, an admin (the first account made from loopback becomes one), then these people:
    none of them gets an admin's powers by being first."""
    made: dict[str, Person] = {}
    try:
        for name in ("boss", *names):
            made[name] = Person(base_url, name)
        yield made
    finally:
        for person in made.values():
            person.close()


def presence_of(user_id: int, status: str) -> Callable[[Frame], bool]:
    """A frame saying `user_id` is now `status`: alone, or among a flush's changes."""

    def matches(frame: Frame) -> bool:
        if frame.get("type") != "presence":
            return False
        if "users" in frame:
            return bool(frame["users"].get(str(user_id)) == status)
        return bool(frame.get("user") == user_id and frame.get("status") == status)

    return matches


def of_type(kind: str, **fields: Any) -> Callable[[Frame], bool]:
    """A frame predicate: this `type` and these field values."""

    def matches(frame: Frame) -> bool:
        return frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items())

    return matches
