"""The relying party's side of OpenID Connect: what is said to the provider, and what is believed.

`OidcClient` knows one provider (CHAT_OIDC_ISSUER) and one client registered there. It builds
the authorization request of the code flow (PKCE S256, `state`, `nonce`), exchanges the code
(client_secret_basic) and returns the `Identity` of a validated ID token: signature against the
provider's JWKS, `iss`, `aud` (named outright: authlib's `CodeIDToken` alone checks it only
through `azp`), `exp`, `iat`, `nonce`, `at_hash`. Profile claims the ID token lacks come from
the userinfo endpoint, whose `sub` must be the token's.

The discovery document and the JWKS are fetched on first use and kept for an hour; a token
signed with a key id the cached JWKS lacks (the provider rotated its keys) makes one refetch.
Every HTTP call has a bounded timeout. authlib provides the pieces that need no HTTP client
(`generate_token`, `create_s256_code_challenge`, `CodeIDToken`), joserfc the JOSE; the HTTP is
httpx, called here, because authlib's httpx integration is deprecated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

logger = logging.getLogger(__name__)

SCOPE = "openid profile email"
# Connect, read, write and pool: no call to the provider holds a request up for longer.
HTTP_TIMEOUT = httpx.Timeout(5.0)
METADATA_TTL_SECONDS = 3600.0
# How far the provider's clock may be from ours when `exp` and `iat` are checked.
CLOCK_SKEW_SECONDS = 60
# Enough randomness for state and nonce; a PKCE verifier needs 43 to 128 characters.
_STATE_CHARS = 43
_VERIFIER_CHARS = 64
# Only signatures made with the provider's private key: an HMAC "signed" ID token would be
# keyed with our own client secret, and "none" is no signature.
_SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_MAX_SUBJECT_CHARS = 255  # external_identities.subject


class OidcError(Exception):
    """The provider's answer cannot be accepted: the message says why (and holds no secret)."""


class ProviderUnavailable(OidcError):
    """The provider could not be reached or answered with a server error."""


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    signing_algorithms: tuple[str, ...]
    # RFC 9207: the provider names itself in the authorization response as `iss`.
    issuer_in_response: bool


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Where to send the browser, and what must be remembered until it comes back."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in. Only (issuer, subject) identifies them; the rest are
    hints for a new account's names."""

    issuer: str
    subject: str
    preferred_username: str | None
    name: str | None
    email: str | None
    email_verified: bool


@dataclass(slots=True)
class _Cached:
    value: Any
    fetched_at: float


class OidcClient:
    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._client_secret = client_secret
        self._http = httpx.AsyncClient(
            timeout=HTTP_TIMEOUT, follow_redirects=False, transport=transport
        )
        self._monotonic = monotonic
        self._now = now
        self._metadata: _Cached | None = None
        self._keys: _Cached | None = None
        # One fetch at a time: a burst of sign-ins after a restart makes one discovery request.
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- the authorization request ----

    async def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        metadata = await self.metadata()
        state = generate_token(_STATE_CHARS)
        nonce = generate_token(_STATE_CHARS)
        code_verifier = generate_token(_VERIFIER_CHARS)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": SCOPE,
                "state": state,
                "nonce": nonce,
                "code_challenge": create_s256_code_challenge(code_verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = metadata.authorization_endpoint
        url = f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
        return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=code_verifier)

    async def check_response_issuer(self, iss: str | None) -> None:
        """RFC 9207: an authorization response naming another issuer is a mix-up attack; one
        naming none is refused when this provider promises to name itself."""
        if iss is None:
            if (await self.metadata()).issuer_in_response:
                raise OidcError(
                    "the authorization response has no `iss` though the provider sends it"
                )
            return
        if iss != self.issuer:
            raise OidcError(f"the authorization response comes from issuer {iss!r}")

    # ---- the code exchange and the ID token ----

    async def identity(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> Identity:
        metadata = await self.metadata()
        tokens = await self._exchange(metadata, code, redirect_uri, code_verifier)
        access_token = tokens.get("access_token")
        claims = await self._id_token_claims(
            metadata, tokens["id_token"], nonce=nonce, access_token=access_token
        )
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= _MAX_SUBJECT_CHARS:
            raise OidcError("the ID token's `sub` is not a string of 1 to 255 characters")
        if (
            any(key not in claims for key in ("preferred_username", "name", "email"))
            and metadata.userinfo_endpoint
            and isinstance(access_token, str)
        ):
            userinfo = await self._userinfo(metadata.userinfo_endpoint, access_token)
            if userinfo.get("sub") != subject:
                raise OidcError("the userinfo endpoint describes another `sub`")
            claims = {**userinfo, **claims}
        email_verified = claims.get("email_verified")
        return Identity(
            issuer=self.issuer,
            subject=subject,
            preferred_username=_text(claims.get("preferred_username")),
            name=_text(claims.get("name")),
            email=_text(claims.get("email")),
            # Some providers send the string "true".
            email_verified=email_verified is True or email_verified == "true",
        )

    async def _exchange(
        self, metadata: ProviderMetadata, code: str, redirect_uri: str, code_verifier: str
    ) -> Mapping[str, Any]:
        # client_secret_basic: RFC 6749 2.3.1 form-encodes both parts before Base64.
        auth = (quote(self.client_id, safe=""), quote(self._client_secret, safe=""))
        response = await self._request(
            "POST",
            metadata.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            auth=auth,
            headers={"Accept": "application/json"},
        )
        body = _json_object(response, "the token endpoint")
        if response.status_code != 200:
            error = body.get("error")
            raise OidcError(
                f"the token endpoint refused the code: {error if isinstance(error, str) else '-'}"
            )
        if not isinstance(body.get("id_token"), str):
            raise OidcError("the token endpoint answered without an ID token")
        return body

    async def _id_token_claims(
        self, metadata: ProviderMetadata, id_token: str, *, nonce: str, access_token: object
    ) -> dict[str, Any]:
        keys = await self._key_set(refresh=False)
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=list(metadata.signing_algorithms))
            except InvalidKeyIdError:
                # Signed with a key we have not seen: the provider rotated its keys. Once.
                keys = await self._key_set(refresh=True)
                token = jwt.decode(id_token, keys, algorithms=list(metadata.signing_algorithms))
            claims = CodeIDToken(
                token.claims,
                token.header,
                {
                    "iss": {"essential": True, "value": self.issuer},
                    "aud": {"essential": True, "value": self.client_id},
                },
                {
                    "nonce": nonce,
                    "client_id": self.client_id,
                    "access_token": access_token if isinstance(access_token, str) else None,
                },
            )
            claims.validate(now=int(self._now()), leeway=CLOCK_SKEW_SECONDS)
        except (JoseError, ValueError) as error:
            raise OidcError(f"the ID token is not valid: {_describe(error)}") from None
        return dict(claims)

    async def _userinfo(self, endpoint: str, access_token: str) -> Mapping[str, Any]:
        response = await self._request(
            "GET",
            endpoint,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
        if response.status_code != 200:
            raise OidcError(f"the userinfo endpoint answered {response.status_code}")
        return _json_object(response, "the userinfo endpoint")

    # ---- discovery and keys, cached ----

    async def metadata(self) -> ProviderMetadata:
        cached = self._metadata
        if cached is not None and self._fresh(cached):
            metadata: ProviderMetadata = cached.value
            return metadata
        async with self._lock:
            if self._metadata is None or not self._fresh(self._metadata):
                self._metadata = _Cached(await self._discover(), self._monotonic())
            metadata = self._metadata.value
            return metadata

    async def _key_set(self, *, refresh: bool) -> KeySet:
        metadata = await self.metadata()
        seen = self._keys
        async with self._lock:
            # After waiting, a concurrent refresh may already have brought the new keys.
            stale = self._keys is None or not self._fresh(self._keys)
            if stale or (refresh and self._keys is seen):
                self._keys = _Cached(await self._fetch_keys(metadata), self._monotonic())
            assert self._keys is not None
            keys: KeySet = self._keys.value
            return keys

    def _fresh(self, cached: _Cached) -> bool:
        return self._monotonic() - cached.fetched_at < METADATA_TTL_SECONDS

    async def _discover(self) -> ProviderMetadata:
        url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
        response = await self._request("GET", url)
        if response.status_code != 200:
            raise ProviderUnavailable(f"discovery at {url} answered {response.status_code}")
        document = _json_object(response, "the discovery document")
        if document.get("issuer") != self.issuer:
            # OpenID Connect Discovery 4.3: the document must name exactly this issuer.
            raise OidcError(
                f"the discovery document names issuer {document.get('issuer')!r}, "
                f"not CHAT_OIDC_ISSUER {self.issuer!r}"
            )
        endpoints = {}
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(key)
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise OidcError(f"the discovery document has no usable {key}")
            endpoints[key] = value
        offered = document.get("id_token_signing_alg_values_supported")
        algorithms = tuple(
            alg for alg in _SIGNING_ALGORITHMS if isinstance(offered, list) and alg in offered
        )
        userinfo = document.get("userinfo_endpoint")
        return ProviderMetadata(
            issuer=self.issuer,
            authorization_endpoint=endpoints["authorization_endpoint"],
            token_endpoint=endpoints["token_endpoint"],
            jwks_uri=endpoints["jwks_uri"],
            userinfo_endpoint=userinfo if isinstance(userinfo, str) else None,
            # RS256 is what every provider must support (OpenID Connect Core 15.1).
            signing_algorithms=algorithms or ("RS256",),
            issuer_in_response=document.get("authorization_response_iss_parameter_supported")
            is True,
        )

    async def _fetch_keys(self, metadata: ProviderMetadata) -> KeySet:
        response = await self._request("GET", metadata.jwks_uri)
        if response.status_code != 200:
            raise ProviderUnavailable(f"the JWKS answered {response.status_code}")
        try:
            return KeySet.import_key_set(_json_object(response, "the JWKS"))  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as error:
            raise OidcError(f"the JWKS cannot be read: {_describe(error)}") from None

    async def _request(self, method: str, url: str, **options: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **options)
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"{method} {url} failed: {_describe(error)}") from None
        if response.status_code >= 500:
            raise ProviderUnavailable(f"{method} {url} answered {response.status_code}")
        return response


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise OidcError(f"{what} did not answer with JSON") from None
    if not isinstance(body, dict):
        raise OidcError(f"{what} did not answer with a JSON object")
    return body


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
