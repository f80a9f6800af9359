"""Sign in at the test OpenID provider as a person would, with httpx instead of a browser.

Given the authorization URL a relying party built, `complete_login` (or `complete_login_async`)
follows the provider's redirects, fills its login form with a user name, confirms (or refuses)
consent, and stops at the first redirect that leaves the provider: the authorization response
for the relying party's redirect_uri, with `code`, `state` and `iss` (or `error`). It never
follows that redirect, so a test can hand it to the relying party as it is, or tampered with
(`AuthorizationResponse.with_params`).

The forms are found by their ids in tests/oidc/provider.mjs: `login-form` (field `login`),
`consent-form` and `abort-form`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx

MAX_STEPS = 12
HTTP_TIMEOUT_S = 5.0


class LoginError(RuntimeError):
    """The provider did not lead to the relying party; the message has its last answer."""


@dataclass(frozen=True)
class AuthorizationResponse:
    """The provider's redirect to the relying party, not followed."""

    url: str
    params: Mapping[str, str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(parse_qsl(urlsplit(self.url).query)))

    @property
    def code(self) -> str | None:
        return self.params.get("code")

    @property
    def state(self) -> str | None:
        return self.params.get("state")

    @property
    def iss(self) -> str | None:
        return self.params.get("iss")

    @property
    def error(self) -> str | None:
        return self.params.get("error")

    def with_params(self, **changes: str | None) -> str:
        """This URL with query parameters replaced, added, or (given None) removed."""
        params = {**self.params, **changes}
        query = urlencode({key: value for key, value in params.items() if value is not None})
        return urlunsplit(urlsplit(self.url)._replace(query=query))


@dataclass(frozen=True)
class _Form:
    id: str
    method: str
    action: str
    fields: dict[str, str]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                _Form(
                    id=attributes.get("id", ""),
                    method=attributes.get("method", "get").upper(),
                    action=attributes.get("action", ""),
                    fields={},
                )
            )
        elif tag == "input" and self.forms and "name" in attributes:
            self.forms[-1].fields[attributes["name"]] = attributes.get("value", "")

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self._text).split())


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    data: dict[str, str] | None = None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _next(
    response: httpx.Response, *, provider: tuple[str, str], username: str, consent: bool
) -> _Request | AuthorizationResponse:
    """What a person would do next on this answer of the provider."""
    url = str(response.url)
    if response.is_redirect:
        location = urljoin(url, response.headers["location"])
        if _origin(location) != provider:
            return AuthorizationResponse(location)
        return _Request("GET", location)

    page = _FormParser()
    page.feed(response.text)
    forms = {form.id: form for form in page.forms}
    if response.status_code == 200 and "login-form" in forms:
        form = forms["login-form"]
        return _Request(form.method, urljoin(url, form.action), {**form.fields, "login": username})
    if response.status_code == 200 and "consent-form" in forms:
        form = forms["consent-form" if consent else "abort-form"]
        return _Request(form.method, urljoin(url, form.action), form.fields)
    raise LoginError(
        f"{response.request.method} {url} answered {response.status_code} with no way on "
        f"(signing in as {username!r}): {page.text[:500]!r}"
    )


def complete_login(
    authorization_url: str,
    *,
    username: str,
    consent: bool = True,
    client: httpx.Client | None = None,
) -> AuthorizationResponse:
    """Sign in as `username` (a preferred_username or a sub) and answer the consent prompt.

    `consent=False` presses Cancel instead, which sends `error=access_denied` to the relying
    party. Pass a `client` to keep the provider's session cookies between logins (single
    sign-on); by default each call is a fresh browser.
    """
    provider = _origin(authorization_url)
    request = _Request("GET", authorization_url)
    with _sync_client(client) as http:
        for _ in range(MAX_STEPS):
            response = http.request(
                request.method, request.url, data=request.data, follow_redirects=False
            )
            step = _next(response, provider=provider, username=username, consent=consent)
            if isinstance(step, AuthorizationResponse):
                return step
            request = step
    raise LoginError(f"no redirect to the relying party after {MAX_STEPS} requests")


async def complete_login_async(
    authorization_url: str,
    *,
    username: str,
    consent: bool = True,
    client: httpx.AsyncClient | None = None,
) -> AuthorizationResponse:
    """`complete_login` for async tests: the same steps on an `httpx.AsyncClient`."""
    provider = _origin(authorization_url)
    request = _Request("GET", authorization_url)
    async with _async_client(client) as http:
        for _ in range(MAX_STEPS):
            response = await http.request(
                request.method, request.url, data=request.data, follow_redirects=False
            )
            step = _next(response, provider=provider, username=username, consent=consent)
            if isinstance(step, AuthorizationResponse):
                return step
            request = step
    raise LoginError(f"no redirect to the relying party after {MAX_STEPS} requests")


def _sync_client(client: httpx.Client | None) -> AbstractContextManager[httpx.Client]:
    """A new client closed after the login, or the caller's, left open."""
    return httpx.Client(timeout=HTTP_TIMEOUT_S) if client is None else nullcontext(client)


def _async_client(
    client: httpx.AsyncClient | None,
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) if client is None else nullcontext(client)
