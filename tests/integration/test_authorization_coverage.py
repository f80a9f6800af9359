"""Every route of the app has rows in an authorization table, so a new route cannot skip them.

A route is covered when a row of one of the tables (test_authorization_accounts, _rooms,
_socket) sends a request that the route, and no other, answers. Routes tested for who may use
them somewhere else are listed below, each with where and why.
"""

from __future__ import annotations

import re

import pytest
from starlette.routing import Match, Route, WebSocketRoute

from chat.schemas import MESSAGE_COMMANDS, ROOM_COMMANDS
from tests.integration import test_authorization_accounts as accounts
from tests.integration import test_authorization_rooms as rooms
from tests.integration import test_authorization_socket as sockets
from tests.support.asgi import WEBSOCKET, client, declared_routes, unstarted_app

COVERED_ELSEWHERE = {
    # The chat page and its no-JavaScript post form are being reworked into /r/<name> and
    # /dm/<username> pages (chat/routes/pages.py); tests/integration/test_pages.py and the
    # e2e no-JS tests hold their guest-access rows until the page rows join a table here.
    ("GET", "/"): "tests/integration/test_pages.py",
    ("POST", "/a/message/new"): "tests/integration/test_pages.py",
    # The room pages and their no-JavaScript forms (chat/web/): test_room_pages.py holds their
    # rows for guest, non-member and removed member (a private room's page byte-equal to a
    # missing room's) until they join a table here.
    **{
        route: "tests/integration/test_room_pages.py"
        for route in (
            ("GET", "/dm"),
            ("GET", "/dm/{username}"),
            ("POST", "/dm/{username}"),
            ("GET", "/r/{room}"),
            ("GET", "/r/{room}/m/{message_id}"),
            ("GET", "/r/{room}/m/{message_id}/delete"),
            ("POST", "/r/{room}/m/{message_id}/delete"),
            ("GET", "/r/{room}/m/{message_id}/edit"),
            ("POST", "/r/{room}/m/{message_id}/edit"),
            ("GET", "/r/{room}/members"),
            ("POST", "/r/{room}/members"),
            ("POST", "/r/{room}/join"),
            ("POST", "/r/{room}/leave"),
            ("POST", "/r/{room}/messages"),
            ("GET", "/rooms/new"),
            ("POST", "/rooms/new"),
        )
    },
    # Search: its permission table (guest, non-member, member, removed member x public,
    # private, DM) is in test_search.py, on both engines.
    ("GET", "/api/search"): "tests/integration/test_search.py",
    ("GET", "/search"): "tests/integration/test_search.py",
    # Static files: the same bytes for everyone, no authorization to test.
    ("GET", "/static"): "a Mount of StaticFiles",
}


def app_routes() -> set[tuple[str, str]]:
    return declared_routes(unstarted_app())


def table_requests() -> list[tuple[str, str]]:
    """(method, path) of every request the tables send, with sample values in the paths."""
    requests = [
        (row.method, row.path.format(bob_token=1, invite=1)) for row in accounts.ROWS.values()
    ]
    requests += [(r.method, r.path.format(room="r", message=1)) for r in rooms.ROUTES.values()]
    requests += [(method, path) for method, path, _, _ in rooms.WHOLE.values()]
    if sockets.COMMANDS:
        requests.append((WEBSOCKET, "/chatsocket"))
    return [(method, path.partition("?")[0]) for method, path in requests]


def covered_routes() -> set[tuple[str, str]]:
    app = unstarted_app()
    covered: set[tuple[str, str]] = set()
    for method, path in table_requests():
        scope = (
            {"type": "websocket", "path": path, "root_path": ""}
            if method == WEBSOCKET
            else {"type": "http", "path": path, "root_path": "", "method": method}
        )
        matches = [
            route
            for route in app.routes
            if isinstance(route, Route | WebSocketRoute) and route.matches(scope)[0] == Match.FULL
        ]
        assert matches, f"a table row asks {method} {path}, which no route answers"
        covered.add((method, matches[0].path))
    return covered


def test_every_route_is_in_an_authorization_table() -> None:
    missing = app_routes() - covered_routes() - set(COVERED_ELSEWHERE)
    assert not missing, (
        "routes with no rows in tests/integration/test_authorization_*.py (add rows, or list "
        f"them in COVERED_ELSEWHERE saying where they are tested): {sorted(missing)}"
    )


def test_the_list_of_routes_covered_elsewhere_is_not_stale() -> None:
    routes = app_routes()
    assert {key for key in COVERED_ELSEWHERE if key not in routes} == set()
    assert {key for key in COVERED_ELSEWHERE if key in covered_routes()} == set()


def test_every_socket_command_is_in_the_socket_table() -> None:
    frames = [frame for frame, _ in sockets.COMMANDS.values()]
    frames += [frame for frame, _ in sockets.NO_ONE_ROOM.values()]
    tabled = {str(frame.get("type", "message")) for frame in frames}
    assert tabled >= {"message", "presence", *ROOM_COMMANDS, *MESSAGE_COMMANDS}


@pytest.mark.anyio
async def test_a_method_a_path_does_not_take_gets_405_naming_every_method_it_does() -> None:
    """Starlette answers 405 from the first route of a path; the app makes one route per path,
    so `Allow` names all of them (it named only GET for /api/rooms)."""
    methods_of: dict[str, set[str]] = {}
    for method, path in declared_routes(unstarted_app()):
        if method != WEBSOCKET and not path.startswith("/static"):
            methods_of.setdefault(path, set()).add(method)
    # Nothing below routing is reached for a 405: the app need not be started.
    async with client(unstarted_app()) as http:
        for path, methods in sorted(methods_of.items()):
            concrete = re.sub(r"\{(\w+)(:int)?\}", "1", path)
            response = await http.request("OPTIONS", concrete)
            assert response.status_code == 405, path
            allowed = {method.strip() for method in response.headers["allow"].split(",")}
            assert allowed - {"HEAD"} == methods, path
