"""Single sign-on in Chromium: a `python -m chat` process, the OIDC test provider, one person.

The sign-in starts at `/auth/oidc/login` (the /login page that links there is another test's)
and ends on `/`, signed in. First the same person is refused: the answer the provider sends back
has its `state` forged on the way (Playwright rewrites the request), which must sign nobody in.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.support.oidc import OidcProvider
from tests.support.oidc_login import AuthorizationResponse
from tests.support.process import ChatServer, free_port

from .conftest import ConsoleProblems
from .pages import WAIT_MS

pytestmark = [pytest.mark.e2e, pytest.mark.oidc]

CALLBACK = "/auth/oidc/callback"
MAX_PROVIDER_HOPS = 5


@pytest.fixture
def sso_chat_server(tmp_path: Path, oidc_provider: OidcProvider) -> Iterator[ChatServer]:
    port = free_port()
    client = oidc_provider.register_client(redirect_uris=[f"http://127.0.0.1:{port}{CALLBACK}"])
    server = ChatServer(
        workdir=tmp_path,
        port=port,
        extra_env={
            "CHAT_OIDC_ISSUER": oidc_provider.issuer,
            "CHAT_OIDC_CLIENT_ID": client.client_id,
            "CHAT_OIDC_CLIENT_SECRET": client.client_secret,
        },
    )
    server.migrate()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def sign_in_at_provider(page: Page, username: str) -> None:
    """The provider's own pages, as far as it shows them (a known browser may see none)."""
    if page.locator("#login-form").count():
        page.fill("#login", username)
        page.click("#sign-in")
        page.wait_for_load_state()
    if page.locator("#consent-form").count():
        page.click("#continue")


def forge_state_on_the_way_back(page: Page, context: BrowserContext, callback: str) -> str:
    """Make the provider's answer to the consent form reach `callback` with a forged state.

    Playwright routes only the first request of a redirect chain, and the answer is the end of
    the chain that the consent form starts: the route takes that form's POST and walks the
    provider's redirects itself (with the browser's cookies) until one leads to `callback`.
    """
    forged_state = secrets.token_urlsafe(16)
    action = page.locator("#consent-form").get_attribute("action")
    assert action is not None

    def forge(route: Route) -> None:
        response = route.fetch(max_redirects=0)
        for _ in range(MAX_PROVIDER_HOPS):
            location = urljoin(response.url, response.headers["location"])
            if location.startswith(f"{callback}?"):
                forged = AuthorizationResponse(location).with_params(state=forged_state)
                route.fulfill(status=303, headers={"Location": forged})
                return
            response = context.request.get(location, max_redirects=0)
        route.abort()

    page.route(urljoin(page.url, action), forge)
    return forged_state


def test_a_forged_state_is_refused_then_a_person_signs_in(
    sso_chat_server: ChatServer,
    oidc_provider: OidcProvider,
    browser: Browser,
    console_problems: ConsoleProblems,
) -> None:
    server = sso_chat_server
    callback = f"{server.url}{CALLBACK}"
    context = browser.new_context()
    try:
        page = console_problems.watch(context.new_page())
        page.goto(f"{server.url}/auth/oidc/login", timeout=WAIT_MS)
        expect(page.locator("h1")).to_have_text("Sign in", timeout=WAIT_MS)
        page.fill("#login", "ada")
        page.click("#sign-in")
        expect(page.locator("h1")).to_have_text("Authorize", timeout=WAIT_MS)
        forge_state_on_the_way_back(page, context, callback)
        page.click("#continue")
        page.wait_for_url(f"{callback}?*", timeout=WAIT_MS)
        expect(page.locator("#sso-code")).to_have_text("unknown_state", timeout=WAIT_MS)
        expect(page.locator("#back-to-login")).to_have_attribute("href", "/login")
        assert page.request.get(f"{server.url}/api/me").status == 401
        page.unroute_all()

        # Again, untouched. The provider remembers Ada now and may ask nothing at all.
        page.goto(f"{server.url}/auth/oidc/login?next=/", timeout=WAIT_MS)
        if page.url.startswith(oidc_provider.issuer):
            sign_in_at_provider(page, "ada")
        page.wait_for_url(f"{server.url}/", timeout=WAIT_MS)
        me = page.request.get(f"{server.url}/api/me")
        assert me.status == 200, me.text()
        assert me.json()["user"]["username"] == "ada"
        assert me.json()["user"]["display_name"] == "Ada Lovelace"
        cookies = {cookie["name"]: cookie for cookie in context.cookies(server.url)}
        assert cookies["chat_session"]["httpOnly"] is True
        assert cookies["chat_session"]["sameSite"] == "Lax"
    finally:
        context.close()
    # On the chat's pages, only the refusal (a 400 document, which Chromium reports); the
    # provider's pages (which have no favicon) are not this test's business.
    ours = [p for p in console_problems.problems if server.url in p]
    assert len(ours) == 1 and "status of 400" in ours[0] and CALLBACK in ours[0], ours
