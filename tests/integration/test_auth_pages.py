"""Sign in, register, sign out and the account page as a browser without JavaScript uses them:
real uvicorn, forms posted as application/x-www-form-urlencoded, cookies kept by httpx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html.parser import HTMLParser

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.live import LiveServer

PASSWORD = "plum tree in winter"
SESSION_COOKIE = "chat_session"


class _FormReader(HTMLParser):
    """The values of a page's inputs and textareas (first of each name, or id) and its error."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self.error: str | None = None
        self._capture: str | None = None  # "error" or a textarea's name

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        name = attributes.get("name") or attributes.get("id")
        if tag == "input" and name:
            self.values.setdefault(name, attributes.get("value") or "")
        elif tag == "textarea" and name:
            self.values.setdefault(name, "")
            self._capture = name
        elif attributes.get("id") == "form-error":
            self.error = ""
            self._capture = "#error"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "textarea"):
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture == "#error":
            self.error = (self.error or "") + data
        elif self._capture is not None:
            self.values[self._capture] += data


def read_page(html: str) -> _FormReader:
    reader = _FormReader()
    reader.feed(html)
    return reader


class NoJsBrowser:
    """A browser without JavaScript: GETs a page, then posts its form with the page's token."""

    def __init__(self, server: LiveServer) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=10, follow_redirects=False)

    def token(self, page: str = "/login") -> str:
        response = self.http.get(page)
        assert response.status_code == 200, (page, response.status_code)
        return read_page(response.text).values["_xsrf"]

    def submit(self, action: str, *, page: str = "/login", **fields: str) -> httpx.Response:
        return self.http.post(action, data={"_xsrf": self.token(page), **fields})

    def register(self, username: str, display_name: str = "") -> httpx.Response:
        response = self.submit(
            "/register",
            page="/register",
            username=username,
            display_name=display_name,
            password=PASSWORD,
        )
        assert response.status_code == 303, read_page(response.text).error
        return response

    def sign_in(self, username: str, password: str = PASSWORD, **fields: str) -> httpx.Response:
        return self.submit("/login", username=username, password=password, **fields)

    def me(self) -> httpx.Response:
        return self.http.get("/api/me")

    def close(self) -> None:
        self.http.close()


BrowserFactory = Callable[[], NoJsBrowser]


@pytest.fixture
def browsers(server: LiveServer) -> Iterator[BrowserFactory]:
    opened: list[NoJsBrowser] = []

    def factory() -> NoJsBrowser:
        opened.append(NoJsBrowser(server))
        return opened[-1]

    yield factory
    for browser in opened:
        browser.close()


def fullwidth(ascii_text: str) -> str:
    """The same letters from Unicode's fullwidth forms ("ada" -> U+FF41 U+FF44 U+FF41)."""
    return "".join(chr(ord(ch) + 0xFEE0) for ch in ascii_text)


def session_set(response: httpx.Response) -> bool:
    """Whether the answer gives the browser a session (not just clears one)."""
    return any(
        value.startswith(f"{SESSION_COOKIE}=") and not value.startswith(f"{SESSION_COOKIE}=;")
        for value in response.headers.get_list("set-cookie")
    )


def stored(server: LiveServer) -> list[dict[str, object]]:
    answer = httpx.get(f"{server.url}/api/messages", timeout=10).json()
    messages: list[dict[str, object]] = answer["messages"]
    return messages


# ---- register, sign out, sign in ----


def test_register_sign_out_and_sign_in(browsers: BrowserFactory) -> None:
    browser = browsers()
    form = browser.http.get("/register")
    assert form.status_code == 200
    assert 'name="invite"' not in form.text  # open registration asks for no invite
    registered = browser.register("ada", "Ada Lovelace")
    assert registered.headers["location"] == "/"
    assert session_set(registered)

    page = browser.http.get("/")
    assert page.status_code == 200
    assert '<span class="whoami-name">Ada Lovelace</span>' in page.text
    assert '<span class="whoami-username">@ada</span>' in page.text
    assert 'data-user-id="' in page.text
    assert 'id="author"' not in page.text  # a signed-in person cannot choose a name
    assert page.headers["cache-control"] == "no-store"

    signed_out = browser.submit("/logout", page="/")
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login"
    assert browser.me().status_code == 401
    guest_page = browser.http.get("/").text
    assert '<span class="whoami whoami-guest">guest</span>' in guest_page
    assert 'href="/login?next=/"' in guest_page
    assert 'id="author"' in guest_page

    signed_in = browser.sign_in("ADA ", next="/account")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/account"
    assert browser.me().json()["user"]["username"] == "ada"


def test_failed_sign_in_is_401_keeps_the_username_and_gives_no_session(
    browsers: BrowserFactory,
) -> None:
    browsers().register("bea")
    browser = browsers()
    for username, password in [("bea", "not the password"), ("nobody", PASSWORD)]:
        refused = browser.sign_in(username, password)
        assert refused.status_code == 401
        assert not session_set(refused)
        page = read_page(refused.text)
        assert page.error == "The username or password is not right."
        assert page.values["username"] == username
        assert page.values["password"] == ""  # a password is never sent back
        assert password not in refused.text
    assert browser.me().status_code == 401


def test_repeated_failures_are_throttled_with_retry_after(browsers: BrowserFactory) -> None:
    browsers().register("cy")
    browser = browsers()
    statuses: list[int] = []
    for _ in range(12):
        response = browser.sign_in("cy", "wrong wrong wrong")
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {401}
    assert int(response.headers["retry-after"]) >= 1
    assert "too many failed sign-ins" in (read_page(response.text).error or "").lower()
    # Throttled means refused before the password is looked at: the right one fails too.
    assert browser.sign_in("cy").status_code == 429


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
def test_next_only_leads_to_this_site(browsers: BrowserFactory, target: str) -> None:
    browsers().register("dee")
    browser = browsers()
    form = browser.http.get("/login", params={"next": target})
    assert read_page(form.text).values["next"] == "/"
    response = browser.sign_in("dee", next=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    registered = browsers().submit(
        "/register", page="/register", username="eve", password=PASSWORD, next=target
    )
    assert registered.status_code == 303
    assert registered.headers["location"] == "/"
    signed_out = browser.submit("/logout", page="/", next=target)
    assert signed_out.headers["location"] == "/login"  # where signing out leads by default


def test_register_names_the_rule_and_keeps_what_was_typed(browsers: BrowserFactory) -> None:
    browsers().register("fay", "Fay")
    browser = browsers()
    cases = [
        ({"username": "gus", "password": "short"}, 400, "at least 8 characters"),
        ({"username": "gus", "password": "password123"}, 400, "most common"),
        ({"username": "FAY", "password": PASSWORD}, 409, "taken"),
        ({"username": "gus", "display_name": fullwidth("FAY"), "password": PASSWORD}, 409, "taken"),
        ({"username": "no spaces", "password": PASSWORD}, 400, "a-z, 0-9"),
    ]
    for fields, status, rule in cases:
        response = browser.submit("/register", page="/register", **fields)
        assert response.status_code == status, fields
        page = read_page(response.text)
        assert rule in (page.error or ""), (fields, page.error)
        assert page.values["username"] == fields["username"]
        assert page.values["display_name"] == fields.get("display_name", "")
        assert page.values["password"] == ""
        assert not session_set(response)
    assert browser.me().status_code == 401


def test_closed_registration(make_server: ServerFactory) -> None:
    server = make_server(registration="closed")
    browser = NoJsBrowser(server)
    try:
        page = browser.http.get("/register")
        assert page.status_code == 200
        assert "Registration is closed" in page.text
        assert 'id="register-form"' not in page.text
        assert 'href="/register"' not in browser.http.get("/").text
        refused = browser.submit("/register", username="hal", password=PASSWORD)
        assert refused.status_code == 403
        assert browser.me().status_code == 401
    finally:
        browser.close()


def test_invite_registration_asks_for_the_code(make_server: ServerFactory) -> None:
    server = make_server(registration="invite")
    browser = NoJsBrowser(server)
    try:
        assert 'name="invite"' in browser.http.get("/register").text
        refused = browser.submit(
            "/register", page="/register", username="ivy", password=PASSWORD, invite="nope"
        )
        assert refused.status_code == 403
        page = read_page(refused.text)
        assert "invite code" in (page.error or "")
        assert page.values["invite"] == "nope"
        assert browser.me().status_code == 401
    finally:
        browser.close()


# ---- the token on every form ----

FORMS = [
    ("/login", "sign-in"),
    ("/register", "registration"),
    ("/logout", "sign-out"),
    ("/account/logout-everywhere", "sign-out everywhere"),
    ("/account/tokens", "new token"),
    ("/account/tokens/{token}/revoke", "revocation"),
    ("/a/message/new", "message"),
]


@pytest.mark.parametrize("token", ["missing", "wrong", "no cookie"])
@pytest.mark.parametrize(("action", "what"), FORMS)
def test_a_form_without_its_token_is_refused_and_changes_nothing(
    server: LiveServer, browsers: BrowserFactory, action: str, what: str, token: str
) -> None:
    owner = browsers()
    owner.register("jo", "Jo")
    bearer = owner.http.post("/api/tokens", json={"name": "ci"}).json()
    other_session = browsers()
    assert other_session.sign_in("jo").status_code == 303
    browser = owner if action != "/register" else browsers()
    form_token = browser.token("/")
    fields = {
        "username": "jo" if action == "/login" else "kay",
        "password": PASSWORD,
        "name": "forged",
        "body": "forged message",
    }
    if token == "wrong":
        fields["_xsrf"] = form_token[::-1]
    elif token == "no cookie":
        fields["_xsrf"] = form_token
        browser.http.cookies.delete("_xsrf")
    response = browser.http.post(action.format(token=bearer["id"]), data=fields)

    assert response.status_code == 403, what
    assert "expired or came from another site" in response.text
    assert not session_set(response)
    assert f"{SESSION_COOKIE}=;" not in ";".join(response.headers.get_list("set-cookie"))
    # Nothing changed: both sessions live, the token works, nothing new was stored or made.
    assert owner.me().status_code == 200
    assert other_session.me().status_code == 200
    with_token = httpx.get(
        f"{server.url}/api/me", headers={"Authorization": f"Bearer {bearer['token']}"}, timeout=10
    )
    assert with_token.status_code == 200
    assert [t["name"] for t in owner.http.get("/api/tokens").json()["tokens"]] == ["ci"]
    assert stored(server) == []
    kay = httpx.post(
        f"{server.url}/api/auth/login",
        json={"username": "kay", "password": PASSWORD},
        timeout=10,
    )
    assert kay.status_code == 401


# ---- sign out ----


def test_following_a_sign_out_link_does_not_sign_out(browsers: BrowserFactory) -> None:
    browser = browsers()
    browser.register("lea", "Léa")
    page = browser.http.get("/logout")
    assert page.status_code == 200
    assert 'id="logout-form"' in page.text
    assert "Léa" in page.text
    assert browser.me().status_code == 200


def test_sign_out_everywhere_ends_the_other_sessions(browsers: BrowserFactory) -> None:
    laptop, phone = browsers(), browsers()
    laptop.register("max")
    assert phone.sign_in("max").status_code == 303
    response = laptop.submit("/account/logout-everywhere", page="/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert phone.me().status_code == 401
    assert laptop.me().status_code == 401
    assert phone.http.get("/account").headers["location"] == "/login?next=%2Faccount"


# ---- the account page and API tokens ----


def test_the_account_page_needs_a_sign_in(browsers: BrowserFactory) -> None:
    browser = browsers()
    response = browser.http.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount"
    for action in ("/account/tokens", "/account/logout-everywhere", "/account/tokens/1/revoke"):
        posted = browser.submit(action, name="x")
        assert posted.status_code == 303
        assert posted.headers["location"] == "/login?next=%2Faccount"


def test_a_token_is_shown_once_and_revocation_works(
    server: LiveServer, browsers: BrowserFactory
) -> None:
    browser = browsers()
    browser.register("ned", "Ned")
    account = browser.http.get("/account")
    assert account.status_code == 200
    assert 'id="no-tokens"' in account.text

    created = browser.submit("/account/tokens", page="/account", name="deploy <bot>")
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    assert "it will not be shown again" in created.text
    secret = _new_token(created.text)
    assert "deploy &lt;bot&gt;" in created.text
    assert "deploy <bot>" not in created.text
    assert '<td data-label="Last used">never</td>' in created.text

    def me_with_token() -> int:
        return httpx.get(
            f"{server.url}/api/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10
        ).status_code

    assert me_with_token() == 200
    listed = browser.http.get("/account").text
    assert secret not in listed  # shown once
    token_id = browser.http.get("/api/tokens").json()["tokens"][0]["id"]
    assert f'data-token-id="{token_id}"' in listed
    assert '<td data-label="Last used"><time datetime=' in listed  # used just now

    revoked = browser.submit(f"/account/tokens/{token_id}/revoke", page="/account")
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/account"
    assert me_with_token() == 401
    assert 'id="no-tokens"' in browser.http.get("/account").text

    again = browser.submit(f"/account/tokens/{token_id}/revoke", page="/account")
    assert again.status_code == 404
    assert read_page(again.text).error == "No such token (was it revoked already?)."
    too_big = browser.submit(f"/account/tokens/{10**30}/revoke", page="/account")
    assert too_big.status_code == 404


def test_a_token_needs_a_name(browsers: BrowserFactory) -> None:
    browser = browsers()
    browser.register("oli")
    refused = browser.submit("/account/tokens", page="/account", name="   ")
    assert refused.status_code == 400
    assert "a token needs a name" in (read_page(refused.text).error or "").lower()
    assert browser.http.get("/api/tokens").json()["tokens"] == []


def _new_token(html: str) -> str:
    reader = read_page(html)
    # The new token is the read-only input's value; no other input holds one.
    values = [value for value in reader.values.values() if value.startswith("chat_")]
    assert len(values) == 1, reader.values
    return values[0]


# ---- the chat page and its form post ----


def test_a_signed_in_form_post_is_stored_as_the_account(
    server: LiveServer, browsers: BrowserFactory
) -> None:
    browser = browsers()
    browser.register("pia", "Pia")
    posted = browser.submit("/a/message/new", page="/", body="as myself", author="someone else")
    assert posted.status_code == 303
    [message] = stored(server)
    assert message["user"] == {
        "id": browser.me().json()["user"]["id"],
        "username": "pia",
        "display_name": "Pia",
    }
    assert message["author"] == "Pia"
    assert "chat_author" not in posted.headers.get("set-cookie", "")


@pytest.mark.parametrize("typed_name", ["quinn", "QUINN", fullwidth("Quinn"), "Quinn Q"])
def test_a_guest_cannot_post_under_a_members_name(
    server: LiveServer, browsers: BrowserFactory, typed_name: str
) -> None:
    browsers().register("quinn", "Quinn Q")
    guest = browsers()
    refused = guest.submit("/a/message/new", page="/", body="pretending <3", author=typed_name)
    assert refused.status_code == 409
    page = read_page(refused.text)
    assert "is the name of an account" in (page.error or "")
    assert page.values["body"] == "pretending <3"  # nothing typed is lost
    assert page.values["author"] == typed_name
    assert stored(server) == []


def test_guests_who_may_only_read(make_server: ServerFactory) -> None:
    server = make_server(guest_access="read")
    guest, member = NoJsBrowser(server), NoJsBrowser(server)
    try:
        page = guest.http.get("/")
        assert page.status_code == 200
        assert 'id="messageform"' not in page.text
        assert 'href="/login?next=/">Sign in to post</a>' in page.text
        refused = guest.submit("/a/message/new", body="may I?", author="gil")
        assert refused.status_code == 401
        assert "Sign in to post" in (read_page(refused.text).error or "")
        assert stored(server) == []

        member.register("rae", "Rae")
        assert 'id="messageform"' in member.http.get("/").text
        assert member.submit("/a/message/new", page="/", body="members may").status_code == 303
        assert [m["body"] for m in stored_as(server, member)] == ["members may"]
        assert "members may" in guest.http.get("/").text  # and guests read it
    finally:
        guest.close()
        member.close()


def test_guests_who_may_not_read(make_server: ServerFactory) -> None:
    server = make_server(guest_access="none")
    guest, member = NoJsBrowser(server), NoJsBrowser(server)
    try:
        page = guest.http.get("/")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2F"
        refused = guest.submit("/a/message/new", body="let me in", author="gil")
        assert refused.status_code == 401
        assert 'id="login-form"' in refused.text
        assert "Sign in to post" in (read_page(refused.text).error or "")

        member.register("sam")
        assert member.http.get("/").status_code == 200
        assert member.submit("/a/message/new", page="/", body="inside").status_code == 303
        assert [m["body"] for m in stored_as(server, member)] == ["inside"]
        assert "inside" not in refused.text
    finally:
        guest.close()
        member.close()


def stored_as(server: LiveServer, reader: NoJsBrowser) -> list[dict[str, object]]:
    messages: list[dict[str, object]] = reader.http.get("/api/messages").json()["messages"]
    return messages


def test_the_sign_in_page_offers_single_sign_on_when_configured(
    make_server: ServerFactory,
) -> None:
    server = make_server(
        oidc_issuer="https://sso.invalid",
        oidc_client_id="chat",
        oidc_client_secret="not used here",
        oidc_name="Example <SSO>",
    )
    with httpx.Client(base_url=server.url, timeout=10) as client:
        page = client.get("/login", params={"next": "/account"}).text
    assert 'href="/auth/oidc/login?next=/account"' in page
    assert "Sign in with Example &lt;SSO&gt;" in page
