"""Single sign-on against a real OpenID provider (tests/oidc) and a real uvicorn.

Each test's server registers its own client at the session's provider, with the server's own
callback as the redirect URI. A `person` is a browser: an httpx client with a cookie jar for the
chat; the provider's pages are driven by `complete_login`, which stops at the redirect back to
the chat so a test can hand it over as it is, tampered with, twice, or in another browser.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chat.auth.middleware import SESSION_COOKIE
from chat.auth.sso_routes import BROWSER_COOKIE
from chat.settings import Settings
from tests.support.live import LiveServer
from tests.support.oidc import OidcProvider, OidcProviderFactory
from tests.support.oidc_login import AuthorizationResponse, complete_login
from tests.support.process import free_port
from tests.support.ws import open_socket, recv_json, send_json

pytestmark = pytest.mark.oidc

CALLBACK = "/auth/oidc/callback"
SsoServerFactory = Callable[..., LiveServer]


@pytest.fixture
def make_sso_server(settings: Settings) -> Iterator[SsoServerFactory]:
    """Servers signing in at `provider` through a client registered for their own callback."""
    started: list[LiveServer] = []

    def factory(provider: OidcProvider, **overrides: Any) -> LiveServer:
        def configure(url: str) -> Settings:
            client = provider.register_client(redirect_uris=[f"{url}{CALLBACK}"])
            return settings.with_overrides(
                oidc_issuer=provider.issuer,
                oidc_client_id=client.client_id,
                oidc_client_secret=client.client_secret,
                **overrides,
            )

        server = LiveServer(configure).start()
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        server.stop()


@pytest.fixture
def sso_server(make_sso_server: SsoServerFactory, oidc_provider: OidcProvider) -> LiveServer:
    # Guests may not even read, so the socket test below proves the cookie is what lets it in.
    return make_sso_server(oidc_provider, guest_access="none")


@pytest.fixture
def person(sso_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sso_server.url, timeout=5.0) as client:
        yield client


def start(person: httpx.Client, next_path: str | None = None) -> str:
    """Ask the chat to sign in; the provider's authorization URL it redirects to."""
    params = {"next": next_path} if next_path is not None else None
    response = person.get("/auth/oidc/login", params=params)
    assert response.status_code == 303, response.text
    assert BROWSER_COOKIE in person.cookies
    return response.headers["location"]


def at_provider(
    person: httpx.Client, username: str, *, next_path: str | None = None, consent: bool = True
) -> AuthorizationResponse:
    """Start a sign-on in `person` and sign in at the provider; the redirect back, unfollowed."""
    return complete_login(start(person, next_path), username=username, consent=consent)


def sign_in(person: httpx.Client, username: str, next_path: str | None = None) -> httpx.Response:
    response = person.get(at_provider(person, username, next_path=next_path).url)
    assert response.status_code == 303, response.text
    return response


def me(person: httpx.Client) -> dict[str, Any]:
    response = person.get("/api/me")
    assert response.status_code == 200, response.text
    user: dict[str, Any] = response.json()["user"]
    return user


def assert_refused(response: httpx.Response, code: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert f'<code id="sso-code">{code}</code>' in response.text
    assert 'href="/login"' in response.text
    assert "Traceback" not in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_the_login_route_redirects_with_pkce_state_and_nonce(
    person: httpx.Client, sso_server: LiveServer, oidc_provider: OidcProvider
) -> None:
    location = start(person)
    assert location.startswith(f"{oidc_provider.issuer}/")
    params = dict(parse_qsl(urlsplit(location).query))
    assert params["response_type"] == "code"
    assert params["scope"] == "openid profile email"
    assert params["code_challenge_method"] == "S256"
    assert params["redirect_uri"] == f"{sso_server.url}{CALLBACK}"
    assert params["client_id"] == sso_server.settings.oidc_client_id
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32
    assert len(params["code_challenge"]) == 43  # base64url of a SHA-256, unpadded
    # The person's half of the pending sign-on: HttpOnly, Lax, ten minutes.
    cookie = person.get("/auth/oidc/login").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=600" in cookie


def test_a_first_sign_in_makes_an_account_whose_session_works_for_http_and_the_socket(
    person: httpx.Client, sso_server: LiveServer
) -> None:
    response = sign_in(person, "ada")
    assert response.headers["location"] == "/"
    assert response.headers["cache-control"] == "no-store"
    session = person.cookies[SESSION_COOKIE]
    user = me(person)
    assert (user["username"], user["display_name"], user["role"]) == (
        "ada",
        "Ada Lovelace",
        "member",
    )
    assert person.get("/api/me").json()["signed_in_with"] == "session"

    # Guests may not read on this server: the handshake without the cookie is refused...
    with pytest.raises(InvalidStatus) as refused:
        open_socket(sso_server.ws_url, origin=sso_server.origin).close()
    assert refused.value.response.status_code == 401
    # ...and with it the socket opens and posts as Ada.
    headers = {"Origin": sso_server.origin, "Cookie": f"{SESSION_COOKIE}={session}"}
    with connect(sso_server.ws_url, additional_headers=headers, open_timeout=5) as ws:
        send_json(ws, {"body": "signed in through the provider", "client_id": "c-sso-1"})
        frame = recv_json(ws)
    assert frame["client_id"] == "c-sso-1"
    assert frame["user"] == {"id": user["id"], "username": "ada", "display_name": "Ada Lovelace"}


def test_a_second_sign_in_finds_the_same_account(sso_server: LiveServer) -> None:
    ids = []
    for _ in range(2):
        with httpx.Client(base_url=sso_server.url, timeout=5.0) as person:
            sign_in(person, "ada")
            ids.append(me(person)["id"])
            users = person.get("/api/users").json()["users"]
    assert ids[0] == ids[1]
    assert [u["username"] for u in users] == ["ada"]


def test_the_same_email_at_another_sub_is_another_account(sso_server: LiveServer) -> None:
    # Ada (verified) and Eve (unverified) give the provider the same address.
    accounts = {}
    for username in ("ada", "eve"):
        with httpx.Client(base_url=sso_server.url, timeout=5.0) as person:
            sign_in(person, username)
            accounts[username] = me(person)
    assert accounts["ada"]["id"] != accounts["eve"]["id"]
    assert (accounts["eve"]["username"], accounts["eve"]["display_name"]) == ("eve", "Eve Mallory")


def test_a_local_account_with_the_same_name_is_not_taken_over(sso_server: LiveServer) -> None:
    with httpx.Client(base_url=sso_server.url, timeout=5.0) as local:
        password = secrets.token_urlsafe(16)
        registered = local.post(
            "/api/auth/register",
            json={"username": "ada", "password": password, "display_name": "Ada Lovelace"},
        )
        assert registered.status_code == 201, registered.text
        local_id = registered.json()["user"]["id"]
    with httpx.Client(base_url=sso_server.url, timeout=5.0) as person:
        sign_in(person, "ada")
        user = me(person)
    assert user["id"] != local_id
    # The name and the display name were taken: the next free name, and it as display name.
    assert (user["username"], user["display_name"]) == ("ada-2", "ada-2")


def test_a_forged_state_is_refused_and_signs_nobody_in(
    person: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    response = at_provider(person, "ada")
    forged_state = secrets.token_urlsafe(16)
    with caplog.at_level(logging.INFO, logger="chat.auth.sso_routes"):
        forged = person.get(response.with_params(state=forged_state))
    assert_refused(forged, "unknown_state")
    # One line, naming the reason and not the secrets.
    (line,) = [r.getMessage() for r in caplog.records if r.name == "chat.auth.sso_routes"]
    assert "unknown_state" in line
    assert response.code is not None and response.code not in line and forged_state not in line
    assert person.get("/api/me").status_code == 401
    # The untouched answer still works: the refusal was the state and nothing else.
    assert person.get(response.url).status_code == 303
    assert me(person)["username"] == "ada"


def test_a_missing_state_is_refused(person: httpx.Client) -> None:
    response = at_provider(person, "ada")
    assert_refused(person.get(response.with_params(state=None)), "missing_state")


def test_a_replayed_callback_is_refused(person: httpx.Client, sso_server: LiveServer) -> None:
    response = at_provider(person, "ada")
    assert person.get(response.url).status_code == 303
    first_session = person.cookies[SESSION_COOKIE]
    assert_refused(person.get(response.url), "unknown_state")
    # The refusal changed nothing: the session the first callback made is still good.
    assert person.cookies[SESSION_COOKIE] == first_session
    assert me(person)["username"] == "ada"


def test_a_callback_in_another_browser_is_refused(
    person: httpx.Client, sso_server: LiveServer
) -> None:
    # Login CSRF: the attacker signs in as themselves and hands the callback URL to a victim.
    response = at_provider(person, "eve")
    with httpx.Client(timeout=5.0) as victim:
        assert_refused(victim.get(response.url), "other_browser")
        assert victim.get(f"{sso_server.url}/api/me").status_code == 401
        assert SESSION_COOKIE not in victim.cookies


def test_a_cancel_at_the_provider_gives_a_clear_page(person: httpx.Client) -> None:
    response = at_provider(person, "ada", consent=False)
    assert response.error == "access_denied"
    refused = person.get(response.url)
    assert_refused(refused, "provider_refused")
    assert "did not sign you in (access_denied)" in refused.text
    assert person.get("/api/me").status_code == 401


def test_an_answer_naming_another_issuer_is_refused(person: httpx.Client) -> None:
    response = at_provider(person, "ada")
    assert response.iss is not None
    mixed_up = person.get(response.with_params(iss="https://evil.example"))
    assert_refused(mixed_up, "invalid_provider_response")


def test_an_expired_sign_on_is_refused_and_swept(
    person: httpx.Client, sso_server: LiveServer
) -> None:
    response = at_provider(person, "ada")
    database = sso_server.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    eleven_minutes_ago = (datetime.now(UTC) - timedelta(minutes=11)).strftime(
        "%Y-%m-%d %H:%M:%S.%f"
    )
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE oidc_logins SET created_at = ?", (eleven_minutes_ago,))
    assert_refused(person.get(response.url), "expired_state")
    # Starting a sign-on sweeps the ones that expired.
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO oidc_logins (state_hash, browser_hash, nonce, code_verifier, "
            "redirect_uri, next_path, created_at) VALUES ('x', 'x', 'n', 'v', 'r', '/', ?)",
            (eleven_minutes_ago,),
        )
    start(person)
    with sqlite3.connect(database) as connection:
        left = connection.execute("SELECT state_hash FROM oidc_logins").fetchall()
    assert len(left) == 1 and left[0][0] != "x"


def test_a_disabled_linked_account_is_refused(person: httpx.Client, sso_server: LiveServer) -> None:
    with httpx.Client(base_url=sso_server.url, timeout=5.0) as admin:
        # The first account registered from this machine is the admin.
        registered = admin.post(
            "/api/auth/register",
            json={"username": "boss", "password": secrets.token_urlsafe(16)},
        )
        assert registered.json()["user"]["role"] == "admin"
        sign_in(person, "ada")
        assert admin.patch("/api/users/ada", json={"disabled": True}).status_code == 200
    assert person.get("/api/me").status_code == 401  # disabling ended the session
    refused = person.get(at_provider(person, "ada").url)
    assert_refused(refused, "account_disabled", status=403)
    assert "disabled" in refused.text


@pytest.mark.parametrize(
    ("next_path", "lands_on"),
    [
        (None, "/"),
        ("/?room=general#latest", "/?room=general#latest"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_only_leads_to_local_paths(
    person: httpx.Client, next_path: str | None, lands_on: str
) -> None:
    assert sign_in(person, "bob", next_path).headers["location"] == lands_on


def test_profile_claims_only_at_userinfo_are_used(
    make_sso_server: SsoServerFactory, make_oidc_provider: OidcProviderFactory
) -> None:
    provider = make_oidc_provider(conform_id_token_claims=True)
    server = make_sso_server(provider)
    with httpx.Client(base_url=server.url, timeout=5.0) as person:
        sign_in(person, "ada")
        user = me(person)
    assert (user["username"], user["display_name"]) == ("ada", "Ada Lovelace")


def test_an_unreachable_provider_gives_a_clear_page(settings: Settings) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    overrides = {"oidc_issuer": nowhere, "oidc_client_id": "c", "oidc_client_secret": "s"}
    with (
        LiveServer(settings.with_overrides(**overrides)) as server,
        httpx.Client(base_url=server.url, timeout=10.0) as person,
    ):
        assert_refused(person.get("/auth/oidc/login"), "provider_unavailable", status=502)


def test_an_issuer_setting_unlike_the_providers_own_gives_a_clear_page(
    settings: Settings, oidc_provider: OidcProvider
) -> None:
    # A trailing slash the provider does not write: issuers are compared exactly.
    overrides = {
        "oidc_issuer": f"{oidc_provider.issuer}/",
        "oidc_client_id": oidc_provider.client_id,
        "oidc_client_secret": oidc_provider.client_secret,
    }
    with (
        LiveServer(settings.with_overrides(**overrides)) as server,
        httpx.Client(base_url=server.url, timeout=5.0) as person,
    ):
        refused = person.get("/auth/oidc/login")
    assert_refused(refused, "invalid_provider_response", status=502)


def test_without_oidc_settings_the_routes_are_404(settings: Settings) -> None:
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=5.0) as client:
        assert client.get("/auth/oidc/login").status_code == 404
        assert client.get(f"{CALLBACK}?code=x&state=y").status_code == 404
