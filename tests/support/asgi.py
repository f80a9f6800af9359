"""The app in the test's own event loop: its lifespan run as a server runs it, and an httpx
client over httpx.ASGITransport. No sockets, no threads: what the big authorization tables use.

httpx's transport does not run the lifespan, and the app reads everything from the state the
lifespan yields (`scope["state"]`), so `started_app` speaks the ASGI lifespan protocol itself and
hands each request a shallow copy of that state, as uvicorn does.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import httpx
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat.app import create_app
from chat.auth import passwords
from chat.settings import Settings

BASE_URL = "http://testserver"
LIFESPAN_TIMEOUT_S = 30.0


# argon2 at its cheapest: a table that starts the app hundreds of times tests who may do what,
# not how hard a password is to guess (the default parameters cost 0.6 s per start, for the
# decoy hash alone).
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@contextlib.asynccontextmanager
async def started_app(settings: Settings) -> AsyncIterator[ASGIApp]:
    """`create_app(settings)` started (its lifespan past startup) until the block ends."""
    with mock.patch.object(passwords, "PasswordHasher", lambda: CHEAP_HASHER):
        async with _started(create_app(settings)) as app:
            yield app


@contextlib.asynccontextmanager
async def _started(app: ASGIApp) -> AsyncIterator[ASGIApp]:
    state: dict[str, Any] = {}
    to_app, app_inbox = anyio.create_memory_object_stream[Message](2)
    from_app, replies = anyio.create_memory_object_stream[Message](2)

    async def run_lifespan() -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
        async with app_inbox, from_app:
            await app(scope, app_inbox.receive, from_app.send)

    async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "state": dict(state)}, receive, send)

    async with anyio.create_task_group() as group, to_app, replies:
        group.start_soon(run_lifespan)
        with anyio.fail_after(LIFESPAN_TIMEOUT_S):
            await to_app.send({"type": "lifespan.startup"})
            started = await replies.receive()
        if started["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {started!r}")
        try:
            yield with_state
        finally:
            with anyio.fail_after(LIFESPAN_TIMEOUT_S):
                await to_app.send({"type": "lifespan.shutdown"})
                stopped = await replies.receive()
            if stopped["type"] != "lifespan.shutdown.complete":
                raise RuntimeError(f"the app did not stop cleanly: {stopped!r}")


def client(app: ASGIApp, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client for the started app; requests come from 127.0.0.1 (a local caller)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, **kwargs)


def copy_database(source: Path, target: Path) -> None:
    """Copy a SQLite database file (and its write-ahead log, if one is left) that no server
    has open: a seeded database reused by many tests without seeding it again."""
    for path in source.parent.glob(f"{source.name}*"):
        shutil.copyfile(path, target.parent / path.name.replace(source.name, target.name, 1))


WEBSOCKET = "WEBSOCKET"
_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def declared_routes(app: Starlette) -> set[tuple[str, str]]:
    """(method, path) of every route the app declares: WEBSOCKET for a socket route, GET for
    a mount; a class endpoint answers the methods it defines."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Route):
            methods = route.methods or {
                method for method in _HTTP_METHODS if hasattr(route.endpoint, method.lower())
            }
            found.update((method, route.path) for method in methods if method != "HEAD")
        elif isinstance(route, WebSocketRoute):
            found.add((WEBSOCKET, route.path))
        elif isinstance(route, Mount):
            found.add(("GET", route.path))
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    return found


def unstarted_app() -> Starlette:
    """The app built and never started: enough to read its route table (no database opened)."""
    return create_app(Settings(database_url="sqlite+aiosqlite:///never-opened.db"))
