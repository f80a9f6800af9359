"""The OIDC test provider (tests/support/oidc.py) against authlib, the library the app will use.

Each sign-in is the relying party's side of the authorization code flow with PKCE (S256),
`state` and `nonce`: discovery, the authorization URL built by authlib's `AsyncOAuth2Client`,
the login driven by `complete_login_async`, the code exchanged at the token endpoint, and the
ID token checked the way authlib's own `parse_id_token` does (joserfc against the provider's
JWKS, then `authlib.oidc.core.CodeIDToken`), with `aud` checked outright.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oauth2.rfc6749.errors import MismatchingStateException
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidClaimError
from joserfc.jwk import KeySet

from tests.support.oidc import (
    RP_REDIRECT_URI,
    TEST_USERS,
    OidcClient,
    OidcProvider,
    OidcProviderFactory,
    missing_prerequisite,
    require_provider,
)
from tests.support.oidc_login import AuthorizationResponse, LoginError, complete_login_async

pytestmark = [pytest.mark.oidc, pytest.mark.anyio]

SCOPE = "openid profile email"
USERS = {user["preferred_username"]: user for user in TEST_USERS}


@dataclass
class SignIn:
    """One authorization request as a relying party makes it, and what it must remember."""

    oauth: AsyncOAuth2Client
    metadata: Mapping[str, Any]
    client: OidcClient
    url: str
    state: str
    nonce: str
    code_verifier: str

    async def exchange(
        self, response: AuthorizationResponse, *, code_verifier: str | None = None
    ) -> dict[str, Any]:
        token: dict[str, Any] = await self.oauth.fetch_token(
            self.metadata["token_endpoint"],
            authorization_response=response.url,
            state=self.state,
            code_verifier=code_verifier or self.code_verifier,
        )
        return token

    async def id_token_claims(self, token: Mapping[str, Any], *, audience: str) -> CodeIDToken:
        jwks = (await self.oauth.get(self.metadata["jwks_uri"])).raise_for_status().json()
        decoded = jwt.decode(
            token["id_token"],
            KeySet.import_key_set(jwks),
            algorithms=self.metadata["id_token_signing_alg_values_supported"],
        )
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                "iss": {"essential": True, "value": self.metadata["issuer"]},
                # authlib's parse_id_token checks `aud` only through `azp` (a token for
                # ["other", ...] with azp=us passes it); name the audience outright.
                "aud": {"essential": True, "value": audience},
            },
            {
                "nonce": self.nonce,
                "client_id": audience,
                "access_token": token["access_token"],
            },
        )
        claims.validate()
        return claims


async def discover(issuer: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        response = await http.get(f"{issuer}/.well-known/openid-configuration")
        response.raise_for_status()
        metadata: dict[str, Any] = response.json()
        return metadata


async def begin(provider: OidcProvider, client: OidcClient | None = None, **extra: str) -> SignIn:
    client = client or provider.client
    metadata = await discover(provider.issuer)
    oauth = AsyncOAuth2Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        scope=SCOPE,
        redirect_uri=client.redirect_uris[0],
        code_challenge_method="S256",
        timeout=5.0,
    )
    code_verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = oauth.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce, **extra
    )
    return SignIn(oauth, metadata, client, url, state, nonce, code_verifier)


async def test_discovery_describes_the_code_flow_with_s256_only(
    oidc_provider: OidcProvider,
) -> None:
    metadata = await discover(oidc_provider.issuer)
    assert metadata["issuer"] == oidc_provider.issuer
    assert metadata["issuer"].startswith("http://127.0.0.1:")
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "profile", "email"} <= set(metadata["scopes_supported"])
    assert {"email", "email_verified", "preferred_username", "name"} <= set(
        metadata["claims_supported"]
    )
    # RFC 9207: the authorization response names its issuer; the app should check it.
    assert metadata["authorization_response_iss_parameter_supported"] is True


@pytest.mark.parametrize("username", ["ada", "eve"])
async def test_code_flow_with_pkce_yields_a_verified_id_token(
    oidc_provider: OidcProvider, username: str
) -> None:
    user = USERS[username]
    sign_in = await begin(oidc_provider)
    async with sign_in.oauth:
        assert "code_challenge_method=S256" in sign_in.url
        response = await complete_login_async(sign_in.url, username=username)
        assert response.url.startswith(f"{RP_REDIRECT_URI}?")
        assert response.state == sign_in.state
        assert response.iss == oidc_provider.issuer
        assert response.code

        token = await sign_in.exchange(response)
        claims = await sign_in.id_token_claims(token, audience=oidc_provider.client_id)

    assert claims["iss"] == oidc_provider.issuer
    assert claims["aud"] == oidc_provider.client_id
    assert claims["nonce"] == sign_in.nonce
    assert {key: claims[key] for key in user} == user
    # Ada and Eve show the same address; only `sub` and `email_verified` tell them apart.
    assert claims["email"] == "ada@example.org"
    assert claims["email_verified"] is (username == "ada")


async def test_a_login_by_sub_signs_in_the_same_account(oidc_provider: OidcProvider) -> None:
    sign_in = await begin(oidc_provider)
    async with sign_in.oauth:
        response = await complete_login_async(sign_in.url, username="u-bob")
        claims = await sign_in.id_token_claims(
            await sign_in.exchange(response), audience=oidc_provider.client_id
        )
    assert claims["sub"] == "u-bob"
    assert claims["preferred_username"] == "bob"


async def test_a_wrong_code_verifier_is_refused(oidc_provider: OidcProvider) -> None:
    sign_in = await begin(oidc_provider)
    async with sign_in.oauth:
        response = await complete_login_async(sign_in.url, username="ada")
        with pytest.raises(OAuthError) as refused:
            await sign_in.exchange(response, code_verifier=generate_token(48))
    assert refused.value.error == "invalid_grant"
    assert "code_verifier does not match code_challenge" in oidc_provider.log_text()


async def test_an_id_token_for_another_client_fails_the_audience_check(
    oidc_provider: OidcProvider,
) -> None:
    other = oidc_provider.register_client(redirect_uris=["http://127.0.0.1/other-rp/callback"])
    sign_in = await begin(oidc_provider, other)
    async with sign_in.oauth:
        response = await complete_login_async(sign_in.url, username="ada")
        assert response.url.startswith("http://127.0.0.1/other-rp/callback?")
        token = await sign_in.exchange(response)
        assert (await sign_in.id_token_claims(token, audience=other.client_id))["sub"] == "u-ada"
        with pytest.raises(InvalidClaimError, match="aud"):
            await sign_in.id_token_claims(token, audience=oidc_provider.client_id)


async def test_an_id_token_with_another_nonce_is_refused(oidc_provider: OidcProvider) -> None:
    sign_in = await begin(oidc_provider)
    async with sign_in.oauth:
        response = await complete_login_async(sign_in.url, username="ada")
        token = await sign_in.exchange(response)
        # A replayed token: its nonce belongs to another sign-in than the one being completed.
        sign_in.nonce = generate_token(20)
        with pytest.raises(InvalidClaimError, match="nonce"):
            await sign_in.id_token_claims(token, audience=oidc_provider.client_id)


async def test_a_request_without_pkce_is_refused(oidc_provider: OidcProvider) -> None:
    metadata = await discover(oidc_provider.issuer)
    async with AsyncOAuth2Client(
        client_id=oidc_provider.client_id,
        client_secret=oidc_provider.client_secret,
        scope=SCOPE,
        redirect_uri=RP_REDIRECT_URI,
    ) as oauth:
        url, state = oauth.create_authorization_url(
            metadata["authorization_endpoint"], nonce=generate_token(20)
        )
    assert "code_challenge" not in url
    response = await complete_login_async(url, username="ada")
    assert response.error == "invalid_request"
    assert "PKCE" in response.params["error_description"]
    assert response.state == state
    assert response.code is None


async def test_the_plain_pkce_method_is_refused(oidc_provider: OidcProvider) -> None:
    sign_in = await begin(oidc_provider)
    async with sign_in.oauth:
        plain = sign_in.url.replace("code_challenge_method=S256", "code_challenge_method=plain")
        response = await complete_login_async(plain, username="ada")
    assert response.error == "invalid_request"
    assert response.code is None


async def test_a_forged_state_is_caught_by_the_relying_party(oidc_provider: OidcProvider) -> None:
    sign_in = await begin(oidc_provider)
    async with sign_in.oauth:
        response = await complete_login_async(sign_in.url, username="ada")
        forged = AuthorizationResponse(response.with_params(state="forged"))
        assert forged.code == response.code
        assert forged.state == "forged"
        with pytest.raises(MismatchingStateException):
            await sign_in.exchange(forged)
        # Untouched, the same code still works: the refusal was the state, nothing else.
        assert (await sign_in.exchange(response))["id_token"]


async def test_an_unknown_login_is_refused(oidc_provider: OidcProvider) -> None:
    sign_in = await begin(oidc_provider)
    async with sign_in.oauth:
        with pytest.raises(LoginError, match='No user "mallory"'):
            await complete_login_async(sign_in.url, username="mallory")


async def test_cancel_at_consent_sends_access_denied(oidc_provider: OidcProvider) -> None:
    sign_in = await begin(oidc_provider)
    async with sign_in.oauth:
        response = await complete_login_async(sign_in.url, username="ada", consent=False)
    assert response.error == "access_denied"
    assert response.state == sign_in.state
    assert response.code is None


async def test_an_unregistered_redirect_uri_is_refused_without_redirecting(
    oidc_provider: OidcProvider,
) -> None:
    sign_in = await begin(oidc_provider)
    async with sign_in.oauth:
        elsewhere = sign_in.url.replace("%2Frp%2Fcallback", "%2Fattacker%2Fcallback")
        assert elsewhere != sign_in.url
        with pytest.raises(LoginError, match="redirect_uri did not match"):
            await complete_login_async(elsewhere, username="ada")


async def test_a_second_sign_in_in_the_same_browser_asks_nothing(
    oidc_provider: OidcProvider,
) -> None:
    async with httpx.AsyncClient(timeout=5.0) as browser:
        first = await begin(oidc_provider)
        async with first.oauth:
            await complete_login_async(first.url, username="bob", client=browser)
        second = await begin(oidc_provider)
        async with second.oauth:
            # The provider's session cookie signs Bob in again; no login form is shown, so the
            # name given here is never used.
            response = await complete_login_async(second.url, username="ada", client=browser)
            claims = await second.id_token_claims(
                await second.exchange(response), audience=oidc_provider.client_id
            )
    assert claims["sub"] == "u-bob"


async def test_conformant_id_tokens_keep_profile_claims_for_userinfo(
    make_oidc_provider: OidcProviderFactory,
) -> None:
    provider = make_oidc_provider(conform_id_token_claims=True)
    sign_in = await begin(provider)
    async with sign_in.oauth:
        response = await complete_login_async(sign_in.url, username="ada")
        token = await sign_in.exchange(response)
        claims = await sign_in.id_token_claims(token, audience=provider.client_id)
        userinfo = (await sign_in.oauth.get(sign_in.metadata["userinfo_endpoint"])).json()
    assert claims["sub"] == "u-ada"
    assert "email" not in claims
    assert userinfo == dict(USERS["ada"])


@pytest.mark.parametrize("how", ["stdin closed", "SIGTERM"])
def test_the_provider_exits_when_its_test_process_goes(
    make_oidc_provider: OidcProviderFactory, how: str
) -> None:
    provider = make_oidc_provider()
    assert provider.startup_seconds is not None
    assert httpx.get(provider.discovery_url, timeout=5.0).status_code == 200
    if how == "SIGTERM":
        os.kill(provider.pid, signal.SIGTERM)
    else:
        provider.close_stdin()
    assert provider.wait(timeout=5.0) == 0
    assert f"stopping: {how}" in provider.log_text()


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_missing_node_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", ci)
    assert "`node` is not on PATH" in (missing_prerequisite() or "")
    expected = pytest.fail.Exception if ci == "true" else pytest.skip.Exception
    with pytest.raises(expected, match="node"):
        require_provider()


def test_a_broken_configuration_fails_start_with_the_log(tmp_path: Path) -> None:
    require_provider()
    provider = OidcProvider(
        redirect_uris=[RP_REDIRECT_URI], users=[{"name": "no sub"}], workdir=tmp_path
    )
    try:
        with pytest.raises(RuntimeError, match="exited with 2 before it was ready") as failed:
            provider.start()
    finally:
        provider.stop()
    assert 'each with a string "sub"' in str(failed.value)
    assert str(provider.log_path) in str(failed.value)
    assert not provider.running
