"""OidcClient against a scripted provider (httpx.MockTransport): what it fetches, caches and
believes. The real provider's flow is in tests/integration/test_sso.py; these are the cases a
well-behaved provider never produces: rotated keys, tokens for someone else, stale clocks.
"""

from __future__ import annotations

import base64
import socket
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from chat.auth import oidc
from chat.auth.oidc import OidcClient, OidcError, ProviderUnavailable

pytestmark = pytest.mark.anyio

ISSUER = "https://id.example"
CLIENT_ID = "chat"
CLIENT_SECRET = "s3cret/with+odd=chars"
NONCE = "n-0123456789"
REDIRECT_URI = "https://chat.example/auth/oidc/callback"


@pytest.fixture(scope="module")
def keys() -> list[RSAKey]:
    return [RSAKey.generate_key(2048, parameters={"kid": f"k{i}"}) for i in range(3)]


class Provider:
    """A provider that signs with `signing_key`, publishes `published`, and counts requests."""

    def __init__(self, keys: list[RSAKey]) -> None:
        self.published = [keys[0]]
        self.signing_key: RSAKey | OctKey = keys[0]
        self.algorithm = "RS256"
        self.claims: dict[str, Any] = {}
        self.userinfo: dict[str, Any] = {}
        self.discovery: dict[str, Any] = {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/auth",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks",
            "userinfo_endpoint": f"{ISSUER}/me",
            "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
            "authorization_response_iss_parameter_supported": True,
        }
        self.token_error: str | None = None
        self.requests: Counter[str] = Counter()
        self.token_requests: list[httpx.Request] = []

    def id_token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "u-1",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": NONCE,
            "preferred_username": "ada",
            "name": "Ada",
            "email": "ada@example.org",
            "email_verified": True,
            **self.claims,
        }
        claims = {key: value for key, value in claims.items() if value is not None}
        header = {"alg": self.algorithm, "kid": self.signing_key.kid or "shared"}
        return jwt.encode(header, claims, self.signing_key, algorithms=[self.algorithm])

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests[path] += 1
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.discovery)
        if path == "/jwks":
            return httpx.Response(200, json=KeySet(list(self.published)).as_dict(private=False))
        if path == "/token":
            self.token_requests.append(request)
            if self.token_error:
                return httpx.Response(400, json={"error": self.token_error})
            return httpx.Response(
                200,
                json={"id_token": self.id_token(), "access_token": "at-1", "token_type": "Bearer"},
            )
        if path == "/me":
            return httpx.Response(200, json={"sub": "u-1", **self.userinfo})
        return httpx.Response(404)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider(keys: list[RSAKey]) -> Provider:
    return Provider(keys)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(provider: Provider, clock: Clock) -> Any:
    client = OidcClient(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        transport=httpx.MockTransport(provider.handle),
        monotonic=clock,
    )
    yield client
    await client.aclose()


async def identity(client: OidcClient) -> oidc.Identity:
    return await client.identity(
        code="code-1", redirect_uri=REDIRECT_URI, code_verifier="v" * 64, nonce=NONCE
    )


async def test_the_authorization_request_carries_pkce_state_and_nonce(client: OidcClient) -> None:
    request = await client.authorization_request(REDIRECT_URI)
    assert request.url.startswith(f"{ISSUER}/auth?")
    params = dict(parse_qsl(urlsplit(request.url).query))
    assert params == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email",
        "state": request.state,
        "nonce": request.nonce,
        "code_challenge": create_s256_code_challenge(request.code_verifier),
        "code_challenge_method": "S256",
    }
    assert 43 <= len(request.code_verifier) <= 128
    again = await client.authorization_request(REDIRECT_URI)
    assert {again.state, again.nonce, again.code_verifier}.isdisjoint(
        {request.state, request.nonce, request.code_verifier}
    )


async def test_a_valid_id_token_gives_the_identity(client: OidcClient, provider: Provider) -> None:
    found = await identity(client)
    assert found == oidc.Identity(
        issuer=ISSUER,
        subject="u-1",
        preferred_username="ada",
        name="Ada",
        email="ada@example.org",
        email_verified=True,
    )
    (request,) = provider.token_requests
    form = dict(parse_qsl(request.content.decode()))
    assert form == {
        "grant_type": "authorization_code",
        "code": "code-1",
        "redirect_uri": REDIRECT_URI,
        "code_verifier": "v" * 64,
    }
    # client_secret_basic, each part form-encoded first (RFC 6749 2.3.1).
    basic = base64.b64decode(request.headers["authorization"].removeprefix("Basic ")).decode()
    assert basic == "chat:s3cret%2Fwith%2Bodd%3Dchars"
    assert provider.requests["/me"] == 0  # the ID token had every claim


async def test_discovery_and_keys_are_cached_for_an_hour(
    client: OidcClient, provider: Provider, clock: Clock
) -> None:
    await identity(client)
    await identity(client)
    assert provider.requests["/.well-known/openid-configuration"] == 1
    assert provider.requests["/jwks"] == 1
    clock.now += oidc.METADATA_TTL_SECONDS + 1
    await identity(client)
    assert provider.requests["/.well-known/openid-configuration"] == 2
    assert provider.requests["/jwks"] == 2


async def test_an_unknown_key_id_refetches_the_keys_once(
    client: OidcClient, provider: Provider, keys: list[RSAKey]
) -> None:
    await identity(client)
    assert provider.requests["/jwks"] == 1
    # The provider rotates: it publishes a new key and signs with it.
    provider.published = [keys[0], keys[1]]
    provider.signing_key = keys[1]
    assert (await identity(client)).subject == "u-1"
    assert provider.requests["/jwks"] == 2
    # A key nobody publishes: one refetch, then a refusal (no loop of fetches).
    provider.signing_key = keys[2]
    with pytest.raises(OidcError, match="not valid"):
        await identity(client)
    assert provider.requests["/jwks"] == 3


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        # authlib checks `aud` only through `azp`: a token for another client that names us as
        # the authorized party must still fail on `aud`.
        ({"aud": ["another-client"], "azp": CLIENT_ID}, "aud"),
        ({"aud": None}, "aud"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"nonce": "another-sign-in"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"exp": int(time.time()) - 3600}, "exp"),
        ({"iat": int(time.time()) + 3600}, "in the future"),
        ({"sub": None}, "sub"),
        ({"sub": "x" * 256}, "sub"),
    ],
)
async def test_an_id_token_with_a_bad_claim_is_refused(
    client: OidcClient, provider: Provider, claims: dict[str, Any], reason: str
) -> None:
    provider.claims = claims
    with pytest.raises(OidcError, match=reason):
        await identity(client)


async def test_an_hmac_signed_id_token_is_refused(client: OidcClient, provider: Provider) -> None:
    # Keyed with our own client secret, which the provider (or anyone holding it) could use.
    provider.signing_key = OctKey.import_key(CLIENT_SECRET.encode() * 2)
    provider.algorithm = "HS256"
    with pytest.raises(OidcError, match="not valid"):
        await identity(client)


async def test_missing_profile_claims_come_from_userinfo(
    client: OidcClient, provider: Provider
) -> None:
    provider.claims = {"preferred_username": None, "name": None, "email": None}
    provider.userinfo = {"preferred_username": "ada", "name": "Ada", "email": "a@example.org"}
    found = await identity(client)
    assert (found.preferred_username, found.name, found.email) == ("ada", "Ada", "a@example.org")
    assert provider.requests["/me"] == 1


async def test_userinfo_about_another_subject_is_refused(
    client: OidcClient, provider: Provider
) -> None:
    provider.claims = {"name": None}
    provider.userinfo = {"sub": "u-2", "name": "Mallory"}
    with pytest.raises(OidcError, match="another `sub`"):
        await identity(client)


async def test_an_unverified_email_is_reported_so(client: OidcClient, provider: Provider) -> None:
    provider.claims = {"email_verified": False}
    assert (await identity(client)).email_verified is False


async def test_a_refused_code_names_the_error(client: OidcClient, provider: Provider) -> None:
    provider.token_error = "invalid_grant"
    with pytest.raises(OidcError, match="invalid_grant"):
        await identity(client)


async def test_discovery_naming_another_issuer_is_refused(
    client: OidcClient, provider: Provider
) -> None:
    provider.discovery["issuer"] = "https://evil.example"
    with pytest.raises(OidcError, match=r"evil\.example"):
        await client.metadata()


async def test_the_response_issuer_is_checked(client: OidcClient, provider: Provider) -> None:
    await client.check_response_issuer(ISSUER)
    with pytest.raises(OidcError):
        await client.check_response_issuer("https://evil.example")
    # The provider promises `iss` (RFC 9207): an answer without it is refused...
    with pytest.raises(OidcError):
        await client.check_response_issuer(None)


async def test_a_response_without_iss_passes_when_the_provider_never_sends_it(
    provider: Provider, client: OidcClient
) -> None:
    provider.discovery["authorization_response_iss_parameter_supported"] = False
    await client.check_response_issuer(None)


async def test_a_failing_provider_is_unavailable_not_a_crash(clock: Clock) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = OidcClient(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        transport=httpx.MockTransport(broken),
        monotonic=clock,
    )
    try:
        with pytest.raises(ProviderUnavailable):
            await client.authorization_request(REDIRECT_URI)
    finally:
        await client.aclose()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


async def test_every_call_gives_up_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch, silent_port: int
) -> None:
    monkeypatch.setattr(oidc, "HTTP_TIMEOUT", httpx.Timeout(0.2))
    client = OidcClient(
        issuer=f"http://127.0.0.1:{silent_port}", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    started = time.monotonic()
    try:
        with pytest.raises(ProviderUnavailable, match="Timeout"):
            await client.metadata()
    finally:
        await client.aclose()
    assert time.monotonic() - started < 2.0
