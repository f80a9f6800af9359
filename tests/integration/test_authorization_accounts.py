"""Who may use each account route: every route x every kind of caller -> the exact answer.

In process (httpx over ASGI), each row on its own copy of one seeded database
(tests.support.callers), so a row that signs out, revokes or disables changes nothing for the
next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat.settings import Settings
from tests.conftest import UNLIMITED_RATES
from tests.support.asgi import client, started_app
from tests.support.callers import PASSWORD, XSRF, World

pytestmark = pytest.mark.anyio

# The columns of every row, in this order.
CALLERS = (
    "guest",  # no credentials (a browser with a form token)
    "member",  # bob, by session cookie
    "member_token",  # bob, by personal API token
    "admin",  # ada, by session cookie
    "disabled",  # gina's session cookie (ended when she was disabled)
    "disabled_token",  # gina's API token
    "revoked_token",  # hal's revoked API token
    "logged_out",  # hal's session cookie, after signing out
    "cross_site",  # bob's cookie, and Origin: another site
    "no_form_token",  # bob's cookie, without the form token a page hands out
)
# Short names for the answers the table repeats (any other entry is literal).
ANSWERS = {
    "U": "401:unauthorized",  # sign in first
    "T": "401:invalid_token",  # a bearer token unknown, revoked or disabled
    "F": "403:forbidden",
    "X": "403:cross_site_request",
    "C": "403:csrf_failed",
    "L": "303>/login?next=%2Faccount",
    "N": "404:not_found",
}
METRICS_TOKEN = "scrape-me-0123456789"
_CROSS_SITE_PAGE = "this request came from another site; it was refused"
_CSRF_PAGE = "The form expired or came from another site"


@dataclass(frozen=True, slots=True)
class Row:
    method: str
    path: str  # {bob_token} and {invite} are filled in from the world
    answers: str  # one entry per caller, in CALLERS order
    json: Any = None
    form: dict[str, str] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def expected(self) -> dict[str, str]:
        entries = self.answers.split()
        return {
            caller: ANSWERS.get(entry, entry)
            for caller, entry in zip(CALLERS, entries, strict=True)
        }


def _form(**fields: str) -> dict[str, str]:
    return {"_xsrf": XSRF, **fields}


METRICS_ON = {"metrics": True}
ROWS: dict[str, Row] = {
    # ---- the JSON API ---- (columns: CALLERS)
    "register": Row(
        "POST",
        "/api/auth/register",
        "201 201 201 201 201 T T 201 X 201",
        json={"username": "newcomer", "password": PASSWORD},
    ),
    "login": Row(
        "POST",
        "/api/auth/login",
        "200 200 200 200 200 T T 200 X 200",
        json={"username": "erin", "password": PASSWORD},
    ),
    "logout": Row("POST", "/api/auth/logout", "204 204 204 204 204 T T 204 X 204"),
    "logout_everywhere": Row("POST", "/api/auth/logout-everywhere", "U 204 204 204 U T T U X 204"),
    "me": Row("GET", "/api/me", "U 200 200 200 U T T U 200 200"),
    "tokens": Row("GET", "/api/tokens", "U 200 200 200 U T T U 200 200"),
    "create_token": Row("POST", "/api/tokens", "U 201 201 201 U T T U X 201", json={"name": "x"}),
    "revoke_token": Row("DELETE", "/api/tokens/{bob_token}", "U 204 204 N U T T U X 204"),
    "invites": Row("GET", "/api/invites", "U F F 200 U T T U F F"),
    "create_invite": Row("POST", "/api/invites", "U F F 201 U T T U X F", json={}),
    "revoke_invite": Row("DELETE", "/api/invites/{invite}", "U F F 204 U T T U X F"),
    "users": Row("GET", "/api/users", "U 200 200 200 U T T U 200 200"),
    "update_user": Row(
        "PATCH", "/api/users/erin", "U F F 200 U T T U X F", json={"disabled": False}
    ),
    "presence": Row("GET", "/api/presence", "U F F 200 U T T U F F"),
    # ---- pages and their forms ----
    "account": Row("GET", "/account", "L 200 200 200 L T T L 200 200"),
    "account_logout_everywhere": Row(
        "POST",
        "/account/logout-everywhere",
        "L 303>/login C 303>/login L T T L X C",
        form=_form(),
    ),
    "account_create_token": Row(
        "POST", "/account/tokens", "L 201 C 201 L T T L X C", form=_form(name="x")
    ),
    "account_revoke_token": Row(
        "POST",
        "/account/tokens/{bob_token}/revoke",
        "L 303>/account C 404 L T T L X C",
        form=_form(),
    ),
    "login_page": Row("GET", "/login", "200 200 200 200 200 T T 200 200 200"),
    "login_form": Row(
        "POST",
        "/login",
        "303>/ 303>/ C 303>/ 303>/ T T 303>/ X C",
        form=_form(username="erin", password=PASSWORD),
    ),
    "register_page": Row("GET", "/register", "200 200 200 200 200 T T 200 200 200"),
    "register_form": Row(
        "POST",
        "/register",
        "303>/ 303>/ C 303>/ 303>/ T T 303>/ X C",
        form=_form(username="newcomer", password=PASSWORD),
    ),
    "logout_page": Row("GET", "/logout", "200 200 200 200 200 T T 200 200 200"),
    "logout_form": Row(
        "POST",
        "/logout",
        "303>/login 303>/login C 303>/login 303>/login T T 303>/login X C",
        form=_form(),
    ),
    # ---- open to everyone (a bad bearer token is refused before any route) ----
    "openapi": Row("GET", "/api/openapi.json", "200 200 200 200 200 T T 200 200 200"),
    "healthz": Row("GET", "/healthz", "200 200 200 200 200 T T 200 200 200"),
    "readyz": Row("GET", "/readyz", "200 200 200 200 200 T T 200 200 200"),
    # ---- single sign-on, not configured here (tests/integration/test_sso.py configures it) ----
    "oidc_login": Row("GET", "/auth/oidc/login", "404 404 404 404 404 T T 404 404 404"),
    "oidc_callback": Row("GET", "/auth/oidc/callback", "404 404 404 404 404 T T 404 404 404"),
    # ---- metrics: off, on, on behind CHAT_METRICS_TOKEN (a bearer token of its own) ----
    "metrics_off": Row("GET", "/metrics", "404 404 404 404 404 404 404 404 404 404"),
    "metrics_open": Row(
        "GET", "/metrics", "200 200 200 200 200 200 200 200 200 200", settings=METRICS_ON
    ),
    "metrics_token": Row(
        "GET",
        "/metrics",
        "U U U U U U U U U U",
        settings={**METRICS_ON, "metrics_token": METRICS_TOKEN},
    ),
}


def outcome(response: httpx.Response) -> str:
    """An answer as the table writes it: `status`, `status:error code`, `status>location`."""
    status = response.status_code
    if 300 <= status < 400:
        return f"{status}>{response.headers['location']}"
    if status < 400:
        return str(status)
    if response.headers.get("content-type", "").startswith("application/json"):
        return f"{status}:{response.json()['error']}"
    # Pages answer in prose; the two cross-site defences are told apart by theirs.
    if _CROSS_SITE_PAGE in response.text:
        return f"{status}:cross_site_request"
    if _CSRF_PAGE in response.text:
        return f"{status}:csrf_failed"
    return str(status)


async def answer(world: World, directory: Path, row: Row, caller: str) -> httpx.Response:
    settings = Settings(
        database_url=world.copy_to(directory), **{**UNLIMITED_RATES, **row.settings}
    )
    path = row.path.format(bob_token=world.people["bob"].token_id, invite=world.invite_id)
    headers = world.headers(caller)
    async with started_app(settings) as app, client(app) as http:
        return await http.request(row.method, path, headers=headers, json=row.json, data=row.form)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROWS)
async def test_account_routes(seeded_world: World, tmp_path: Path, route: str, caller: str) -> None:
    row = ROWS[route]
    response = await answer(seeded_world, tmp_path, row, caller)
    assert outcome(response) == row.expected()[caller], response.text[:300]


async def test_metrics_with_its_token(seeded_world: World, tmp_path: Path) -> None:
    """The one caller the metrics_token row leaves out: the scraper with the right token."""
    row = ROWS["metrics_token"]
    settings = Settings(
        database_url=seeded_world.copy_to(tmp_path), **{**UNLIMITED_RATES, **row.settings}
    )
    async with started_app(settings) as app, client(app) as http:
        response = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert "chat_" in response.text
