"""A person signs in at the OIDC test provider in Chromium: the pages the chat's SSO tests drive.

No relying party runs here: Playwright intercepts the redirect to `RP_REDIRECT_URI`, and the
test exchanges the code itself, with the PKCE verifier only it knows.
"""

from __future__ import annotations

import json
from base64 import urlsafe_b64decode
from urllib.parse import urlencode

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from playwright.sync_api import Browser, Page, Route, expect

from tests.support.oidc import RP_REDIRECT_URI, OidcProvider
from tests.support.oidc_login import AuthorizationResponse

from .conftest import ConsoleProblems
from .pages import WAIT_MS

pytestmark = [pytest.mark.e2e, pytest.mark.oidc]


def test_a_person_signs_in_and_consents_in_a_browser(
    oidc_provider: OidcProvider, browser: Browser, console_problems: ConsoleProblems
) -> None:
    # A context of its own: pytest-playwright's `page` fixture needs its `base_url` fixture,
    # which pytest 9 refuses (PytestRemovedIn10Warning); the other e2e tests do the same.
    context = browser.new_context()
    try:
        sign_in_in_chromium(oidc_provider, console_problems.watch(context.new_page()))
    finally:
        context.close()
    assert console_problems.problems == []


def sign_in_in_chromium(oidc_provider: OidcProvider, page: Page) -> None:
    verifier, state, nonce = generate_token(48), generate_token(16), generate_token(16)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": oidc_provider.client_id,
            "redirect_uri": RP_REDIRECT_URI,
            "scope": "openid profile email",
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )

    def relying_party(route: Route) -> None:
        route.fulfill(status=200, content_type="text/plain", body="signed in")

    page.route(f"{RP_REDIRECT_URI}?*", relying_party)
    page.goto(f"{oidc_provider.issuer}/auth?{query}", timeout=WAIT_MS)

    expect(page.locator("h1")).to_have_text("Sign in")
    page.fill("#login", "ada")
    page.click("#sign-in")
    expect(page.locator("h1")).to_have_text("Authorize", timeout=WAIT_MS)
    expect(page.locator("#scopes")).to_contain_text("email")
    page.click("#continue")
    page.wait_for_url(f"{RP_REDIRECT_URI}?*", timeout=WAIT_MS)

    response = AuthorizationResponse(page.url)
    assert response.state == state
    assert response.iss == oidc_provider.issuer
    assert response.code
    token = httpx.post(
        f"{oidc_provider.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": response.code,
            "redirect_uri": RP_REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(oidc_provider.client_id, oidc_provider.client_secret),
        timeout=5.0,
    )
    assert token.status_code == 200, token.text
    # The signature is checked in tests/integration/test_oidc_provider.py; here, whose it is.
    payload = token.json()["id_token"].split(".")[1]
    claims = json.loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert (claims["sub"], claims["nonce"]) == ("u-ada", nonce)
