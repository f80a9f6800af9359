"""`chat users` and `chat invites` as an operator runs them: real processes, from a directory of
their own, against a migrated database (SQLite, and PostgreSQL for one path), and against the
database of a live server whose open sockets they must close."""

from __future__ import annotations

import json
import os
import pty
import re
import secrets
import select
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from chat.broadcast.factory import publish_signal_once
from chat.broadcast.relay import Received, Transport
from chat.migrate import SchemaStatus, head_revision
from tests.support.database import sqlite_url, upgrade
from tests.support.postgres import PostgresDatabase
from tests.support.process import REPO_ROOT, ChatServer, free_port
from tests.support.services import REDIS_URL, redis_ping, unavailable
from tests.support.ws import close_code, expect_silence

TIMEOUT_S = 60
PASSWORD = "correct horse battery staple"
OTHER_PASSWORD = "another long passphrase"
INVITE_CODE = re.compile(r"chat_inv_[A-Za-z0-9_-]{20,}")
# A socket the broker signal closes closes within this, counted from the command's exit.
SIGNAL_CLOSE_S = 2.0


@dataclass
class Cli:
    """`python -m chat` with one environment, run from a directory that is not the repository."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self, *args: str, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chat", *args],
            cwd=self.cwd,
            env={**self.env, **env},
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """Run a command that must succeed; its stdout."""
        result = self(*args, stdin=stdin)
        assert result.returncode == 0, f"{args}: {result.returncode}\n{result.stderr}"
        return result.stdout

    def add_user(self, username: str, *flags: str, password: str = PASSWORD) -> None:
        self.ok("users", "add", username, "--password-stdin", *flags, stdin=password + "\n")

    def users(self) -> dict[str, dict[str, object]]:
        lines = self.ok("users", "list", "--json").splitlines()
        return {user["username"]: user for user in map(json.loads, lines)}


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    # Nothing of the caller's CHAT_* configuration leaks in: each test says what it runs with.
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHAT_")}
    return {
        **env,
        # The source tree, as an installed package would be on the path.
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
        "CHAT_DATABASE_URL": database_url,
        **extra,
    }


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    return directory


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Path:
    path = tmp_path / "chat.db"
    upgrade(sqlite_url(path))
    return path


@pytest.fixture
def cli(elsewhere: Path, sqlite_database: Path) -> Cli:
    return Cli(elsewhere, cli_env(sqlite_url(sqlite_database)))


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def stored_user(path: Path, username: str) -> sqlite3.Row:
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        row: sqlite3.Row | None = connection.execute(
            "SELECT * FROM users WHERE username = ?", (username,)
        ).fetchone()
    assert row is not None, username
    return row


def password_matches(path: Path, username: str, password: str) -> bool:
    stored = stored_user(path, username)["password_hash"]
    try:
        return stored is not None and PasswordHasher().verify(stored, password)
    except VerificationError:
        return False


# ---- help ----

COMMANDS = [
    ("users",),
    ("users", "add"),
    ("users", "list"),
    ("users", "disable"),
    ("users", "enable"),
    ("users", "set-password"),
    ("users", "promote"),
    ("users", "demote"),
    ("invites",),
    ("invites", "add"),
    ("invites", "list"),
    ("invites", "revoke"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(cli: Cli, command: tuple[str, ...]) -> None:
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: chat {' '.join(command)} ")
    if len(command) == 2:
        assert "--database-url URL" in result.stdout


def test_the_top_level_help_lists_users_and_invites(cli: Cli) -> None:
    result = cli("--help")
    assert result.returncode == 0
    assert re.search(r"^\s+users\s+add, list", result.stdout, re.M)
    assert re.search(r"^\s+invites\s+make, list", result.stdout, re.M)


def test_help_never_shows_a_password_from_the_environment(elsewhere: Path) -> None:
    cli = Cli(
        elsewhere,
        cli_env(
            "postgresql+asyncpg://chat:db-s3cret@db.example/chat",
            CHAT_BROADCAST_URL="redis://:broker-s3cret@redis.example:6379/0",
        ),
    )
    for command in ((), ("users", "add"), ("migrate",)):
        result = cli(*command, "--help")
        assert result.returncode == 0, result.stderr
        assert "db.example" in result.stdout
        assert "s3cret" not in result.stdout


def test_a_command_group_without_a_command_is_a_usage_error(cli: Cli) -> None:
    result = cli("users")
    assert result.returncode == 2
    assert "usage: chat users" in result.stderr


# ---- users ----


def test_add_reads_the_password_from_stdin_and_list_shows_the_account(
    cli: Cli, sqlite_database: Path
) -> None:
    out = cli.ok(
        *("users", "add", "Ada", "--display-name", "Ada L.", "--admin", "--password-stdin"),
        stdin=PASSWORD + "\n",
    )
    assert "added admin 'ada'" in out
    assert password_matches(sqlite_database, "ada", PASSWORD)
    assert not password_matches(sqlite_database, "ada", PASSWORD + "\n")

    table = cli.ok("users", "list").splitlines()
    assert re.split(r"\s{2,}", table[0]) == [
        *("id", "username", "display name", "role", "disabled", "created", "last seen")
    ]
    assert re.fullmatch(
        r"1\s+ada\s+Ada L\.\s+admin\s+no\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+never", table[2]
    )
    (user,) = cli.users().values()
    assert user == {
        "id": 1,
        "username": "ada",
        "display_name": "Ada L.",
        "role": "admin",
        "disabled": False,
        "created_at": user["created_at"],
        "last_seen_at": None,
    }
    assert str(user["created_at"]).endswith("Z")


def test_add_without_a_password_makes_an_account_for_single_sign_on(
    cli: Cli, sqlite_database: Path
) -> None:
    out = cli.ok("users", "add", "bob", "--no-password")
    assert "added member 'bob'" in out and "single sign-on" in out
    assert stored_user(sqlite_database, "bob")["password_hash"] is None


def test_add_asks_for_the_password_twice_at_a_terminal(cli: Cli, sqlite_database: Path) -> None:
    code, _out, err = run_at_terminal(cli, ["users", "add", "carol"], [PASSWORD, PASSWORD])
    assert code == 0, err
    assert "New password for carol:" in err and "again" in err
    assert password_matches(sqlite_database, "carol", PASSWORD)

    code, _out, err = run_at_terminal(cli, ["users", "add", "dave"], [PASSWORD, OTHER_PASSWORD])
    assert code == 1
    assert "the two passwords differ" in err
    assert "dave" not in cli.users()

    # The rules are checked before the second prompt.
    code, _out, err = run_at_terminal(cli, ["users", "add", "dave"], ["short"])
    assert code == 1
    assert "at least 8 characters" in err and "again" not in err


def test_a_password_is_never_taken_from_the_command_line(cli: Cli) -> None:
    result = cli("users", "add", "erin", "--password", PASSWORD)
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
    # Without a terminal or --password-stdin the command says how to give one.
    result = cli("users", "add", "erin")
    assert result.returncode == 1
    assert "--password-stdin" in one_line(result.stderr)
    assert cli.users() == {}


@pytest.mark.parametrize(
    ("args", "stdin", "detail"),
    [
        (["frank", "--password-stdin"], "short\n", "a password needs at least 8 characters"),
        (["frank", "--password-stdin"], "password123\n", "one of the most common"),
        (["frank", "--password-stdin"], "\n", "stdin holds no password"),
        (["frank", "--password-stdin"], f"{PASSWORD}\nmore\n", "alone on one line"),
        (["admin", "--no-password"], None, "the username 'admin' is reserved"),
        (["no spaces", "--no-password"], None, "a username has 1 to 32 characters"),
        (["frank", "--no-password", "--display-name", "a\u200bb"], None, "invisible"),
    ],
    ids=["short", "common", "empty", "two-lines", "reserved", "malformed", "display-name"],
)
def test_add_refuses_what_the_rules_refuse(
    cli: Cli, args: list[str], stdin: str | None, detail: str
) -> None:
    result = cli("users", "add", *args, stdin=stdin)
    assert result.returncode == 1
    assert one_line(result.stderr).startswith("chat users add: ")
    assert detail in result.stderr
    assert cli.users() == {}


def test_add_refuses_a_taken_name(cli: Cli) -> None:
    cli.add_user("grace")
    result = cli("users", "add", "GRACE", "--no-password")
    assert result.returncode == 1
    assert "is taken" in one_line(result.stderr)
    result = cli("users", "add", "henry", "--no-password", "--display-name", "Grace")
    assert result.returncode == 1
    assert "is taken" in one_line(result.stderr)


@pytest.mark.parametrize(
    "command",
    [
        ["disable", "nobody"],
        ["enable", "nobody"],
        ["promote", "nobody"],
        ["demote", "nobody"],
        ["set-password", "nobody", "--password-stdin"],
        ["disable", "No Body"],
    ],
    ids=lambda command: command[0] + ("-malformed" if " " in command[1] else ""),
)
def test_an_unknown_user_is_named(cli: Cli, command: list[str]) -> None:
    result = cli("users", *command, stdin=PASSWORD + "\n")
    assert result.returncode == 1
    assert one_line(result.stderr) == f"chat users {command[0]}: no user named {command[1]!r}"


def test_disable_enable_promote_demote_and_the_last_admin(cli: Cli) -> None:
    cli.add_user("root1", "--admin")
    cli.add_user("ivy")

    refused = cli("users", "disable", "root1")
    assert refused.returncode == 1
    assert "last enabled admin" in one_line(refused.stderr) and "--force" in refused.stderr
    refused = cli("users", "demote", "root1")
    assert refused.returncode == 1
    assert "last enabled admin" in one_line(refused.stderr)
    assert cli.users()["root1"]["role"] == "admin"

    assert "'ivy' is an admin now" in cli.ok("users", "promote", "ivy")
    assert "already an admin" in cli.ok("users", "promote", "ivy")
    out = cli.ok("users", "disable", "ivy")
    assert "disabled 'ivy'" in out
    # memory://: this command cannot reach the server, and says when its sockets close.
    assert "CHAT_AUTH_RECHECK_SECONDS (30 s)" in out
    assert "already disabled" in cli.ok("users", "disable", "ivy")
    # A disabled admin does not count: root1 is still the last enabled one.
    assert cli("users", "demote", "root1").returncode == 1
    assert "enabled 'ivy'" in cli.ok("users", "enable", "ivy")
    assert "'root1' is a member now" in cli.ok("users", "demote", "root1")

    cli.ok("users", "disable", "ivy", "--force")
    users = cli.users()
    assert users["ivy"]["disabled"] is True and users["ivy"]["role"] == "admin"
    assert users["root1"]["disabled"] is False and users["root1"]["role"] == "member"
    assert "is not an admin" in cli.ok("users", "demote", "root1")


def test_set_password_replaces_the_password(cli: Cli, sqlite_database: Path) -> None:
    cli.add_user("judy")
    out = cli.ok("users", "set-password", "judy", "--password-stdin", stdin=OTHER_PASSWORD)
    assert "set the password of 'judy'" in out
    assert password_matches(sqlite_database, "judy", OTHER_PASSWORD)
    assert not password_matches(sqlite_database, "judy", PASSWORD)
    refused = cli("users", "set-password", "judy", "--password-stdin", stdin="password\n")
    assert refused.returncode == 1
    assert "most common" in one_line(refused.stderr)
    assert password_matches(sqlite_database, "judy", OTHER_PASSWORD)


# ---- invites ----


def test_invites_add_prints_the_code_alone_and_list_never_shows_it(cli: Cli) -> None:
    result = cli("invites", "add", "--uses", "3", "--expires-in", "12h")
    assert result.returncode == 0, result.stderr
    assert INVITE_CODE.fullmatch(result.stdout.removesuffix("\n"))
    code = result.stdout.strip()
    assert "3 registrations" in result.stderr and code not in result.stderr
    assert "CHAT_REGISTRATION is 'open'" in result.stderr  # no invite needed here: say so

    listing = cli.ok("invites", "list")
    assert code not in listing
    assert re.search(rf"^1\s+{re.escape(code[:13])}…\s+0/3\s+.*\s+live$", listing, re.M)
    (invite,) = [json.loads(line) for line in cli.ok("invites", "list", "--json").splitlines()]
    assert code not in json.dumps(invite)
    assert invite["hint"] == code[:13] + "…"
    assert (invite["id"], invite["max_uses"], invite["uses"], invite["revoked"]) == (1, 3, 0, False)

    assert "revoked invite 1" in cli.ok("invites", "revoke", "1")
    assert "already revoked" in cli.ok("invites", "revoke", "1")
    assert re.search(r"^1\s.*\srevoked$", cli.ok("invites", "list"), re.M)


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["add", "--expires-in", "3w"], 2, "'3w' is not a duration"),
        (["add", "--expires-in", "400d"], 1, "from 1 minute to 365 days"),
        (["add", "--uses", "0"], 1, "1 to 10000 uses"),
        (["add", "--uses", "many"], 2, "invalid int value: 'many'"),
        (["revoke", "99"], 1, "no invite with id 99"),
        (["revoke", "first"], 2, "invalid int value: 'first'"),
    ],
    ids=["duration", "too-long", "no-uses", "uses-not-a-number", "unknown", "id-not-a-number"],
)
def test_invites_refuse_bad_input_naming_it(
    cli: Cli, args: list[str], status: int, message: str
) -> None:
    result = cli("invites", *args)
    assert result.returncode == status
    assert message in result.stderr
    assert result.stdout == ""


# ---- the database ----


def test_the_database_url_option_overrides_the_environment(
    elsewhere: Path, sqlite_database: Path
) -> None:
    cli = Cli(elsewhere, cli_env(sqlite_url(elsewhere / "missing" / "chat.db")))
    url = sqlite_url(sqlite_database)
    cli.ok("users", "add", "kim", "--no-password", "--database-url", url)
    assert "kim" in cli.ok("--database-url", url, "users", "list")


def test_an_unreachable_database_is_one_line_without_its_password(elsewhere: Path) -> None:
    port = free_port()
    cli = Cli(elsewhere, cli_env(f"postgresql+asyncpg://chat:pg-s3cret@127.0.0.1:{port}/chat"))
    result = cli("users", "list")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith(
        f"chat users list: cannot use the database (postgresql+asyncpg://chat:***@127.0.0.1:{port}"
        "/chat): "
    )
    assert "s3cret" not in result.stderr

    missing = elsewhere / "no such directory" / "chat.db"
    result = Cli(elsewhere, cli_env(sqlite_url(missing)))("invites", "list")
    assert result.returncode == 1
    assert one_line(result.stderr).startswith(
        f"chat invites list: cannot use the database (SQLite file {missing.resolve()}): "
    )


def test_a_schema_not_at_head_gets_the_servers_line(elsewhere: Path) -> None:
    cli = Cli(elsewhere, cli_env(sqlite_url(elsewhere / "chat.db")))
    expected = SchemaStatus(current=(), head=head_revision()).describe()
    result = cli("users", "add", "lee", "--no-password")
    assert result.returncode == 1
    assert one_line(result.stderr) == f"chat users add: {expected}"
    served = cli("--port", str(free_port()))
    assert served.returncode == 1
    assert one_line(served.stderr).endswith(expected)


# ---- one path on PostgreSQL too ----


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_database_url(request: pytest.FixtureRequest, sqlite_database: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(sqlite_database)
    postgres: PostgresDatabase = request.getfixturevalue("postgres_database")
    url = postgres.extra()
    upgrade(url)
    return url


def test_accounts_and_invites_on_either_database(elsewhere: Path, any_database_url: str) -> None:
    cli = Cli(elsewhere, cli_env(any_database_url))
    cli.add_user("mia", "--admin")
    cli.add_user("ned")
    assert "disabled 'ned'" in cli.ok("users", "disable", "ned")
    assert cli("users", "demote", "mia").returncode == 1
    users = cli.users()
    assert (users["mia"]["role"], users["ned"]["disabled"]) == ("admin", True)
    code = cli.ok("invites", "add").strip()
    assert INVITE_CODE.fullmatch(code)
    assert code not in cli.ok("invites", "list", "--json")


# ---- against a live server ----


def redis_url() -> str:
    parts = urlsplit(REDIS_URL)
    if not redis_ping(parts.hostname or "127.0.0.1", parts.port or 6379):
        unavailable(f"Redis at {REDIS_URL}", "no PONG")
    return REDIS_URL


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., tuple[ChatServer, Cli]]]:
    servers: list[ChatServer] = []

    def start(**env: str) -> tuple[ChatServer, Cli]:
        workdir = tmp_path / f"server{len(servers)}"
        workdir.mkdir()
        server = ChatServer(
            workdir=workdir, port=free_port(), extra_env={"CHAT_LOG_LEVEL": "info", **env}
        )
        upgrade(server.database_url)
        servers.append(server)
        server.start()
        # The command runs with the server's configuration, as an operator on that host would.
        return server, Cli(workdir, cli_env(server.database_url, **env))

    yield start
    for server in servers:
        server.stop()


def sign_in(server: ChatServer, username: str, password: str = PASSWORD) -> str:
    """The Cookie header of a fresh session."""
    with httpx.Client(base_url=server.url, timeout=5) as http:
        response = http.post("/api/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        assert http.get("/api/me").json()["user"]["username"] == username
        return f"chat_session={response.cookies['chat_session']}"


def open_socket(server: ChatServer, cookie: str) -> ClientConnection:
    return connect(
        server.ws_url, additional_headers={"Cookie": cookie}, open_timeout=5, close_timeout=2
    )


@pytest.mark.redis
def test_disable_closes_the_users_socket_on_a_live_server_through_redis(
    start_server: Callable[..., tuple[ChatServer, Cli]],
) -> None:
    server, cli = start_server(
        CHAT_BROADCAST_URL=redis_url(),
        CHAT_BROADCAST_CHANNEL=f"chat_test_{secrets.token_hex(6)}",
        # Guests may not open a socket: an open one is signed in. The re-check is far away, so
        # a close within seconds is the signal's doing.
        CHAT_GUEST_ACCESS="none",
        CHAT_AUTH_RECHECK_SECONDS="600",
    )
    cli.add_user("olga")
    cli.add_user("pat")
    olga_cookie = sign_in(server, "olga")
    with (
        open_socket(server, olga_cookie) as olga,
        open_socket(server, sign_in(server, "pat")) as pat,
    ):
        expect_silence(olga, 0.2)
        out = cli.ok("users", "disable", "olga")
        disabled_at = time.monotonic()
        assert "told through the broker" in out
        assert close_code(olga, timeout=SIGNAL_CLOSE_S + 1) == 4401
        assert time.monotonic() - disabled_at < SIGNAL_CLOSE_S
        # The handshake's credential check was remembered for reconnects; the signal that
        # closed her socket forgot it: her cookie opens nothing now (guests may not either).
        with pytest.raises(InvalidStatus) as refused:
            open_socket(server, olga_cookie)
        assert refused.value.response.status_code == 401
        expect_silence(pat, 0.3)  # someone else's socket stays open
        assert pat.ping().wait(2)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        refused = http.post("/api/auth/login", json={"username": "olga", "password": PASSWORD})
        assert refused.status_code == 401


@pytest.mark.redis
def test_set_password_closes_the_users_socket_on_a_live_server_through_redis(
    start_server: Callable[..., tuple[ChatServer, Cli]],
) -> None:
    server, cli = start_server(
        CHAT_BROADCAST_URL=redis_url(),
        CHAT_BROADCAST_CHANNEL=f"chat_test_{secrets.token_hex(6)}",
        CHAT_GUEST_ACCESS="none",
        CHAT_AUTH_RECHECK_SECONDS="600",
    )
    cli.add_user("quinn")
    cookie = sign_in(server, "quinn")
    with open_socket(server, cookie) as socket:
        cli.ok("users", "set-password", "quinn", "--password-stdin", stdin=OTHER_PASSWORD)
        changed_at = time.monotonic()
        assert close_code(socket, timeout=SIGNAL_CLOSE_S + 1) == 4401
        assert time.monotonic() - changed_at < SIGNAL_CLOSE_S
    sign_in(server, "quinn", OTHER_PASSWORD)


def test_with_memory_broadcast_the_socket_closes_at_the_next_recheck(
    start_server: Callable[..., tuple[ChatServer, Cli]],
) -> None:
    server, cli = start_server(
        CHAT_BROADCAST_URL="memory://", CHAT_GUEST_ACCESS="none", CHAT_AUTH_RECHECK_SECONDS="1"
    )
    cli.add_user("rita")
    with open_socket(server, sign_in(server, "rita")) as socket:
        out = cli.ok("users", "disable", "rita")
        disabled_at = time.monotonic()
        assert "memory://" in out and "CHAT_AUTH_RECHECK_SECONDS (1 s)" in out
        assert close_code(socket, timeout=4) == 4401
        assert time.monotonic() - disabled_at < 1 + SIGNAL_CLOSE_S


def test_an_invite_from_the_cli_registers_once(
    start_server: Callable[..., tuple[ChatServer, Cli]],
) -> None:
    server, cli = start_server(CHAT_REGISTRATION="invite")
    result = cli("invites", "add", "--uses", "1")
    assert result.returncode == 0, result.stderr
    assert "CHAT_REGISTRATION" not in result.stderr  # the note is for other modes only
    code = result.stdout.strip()
    with httpx.Client(base_url=server.url, timeout=5) as http:

        def register(username: str, invite: str | None) -> httpx.Response:
            payload = {"username": username, "password": PASSWORD, "invite": invite}
            return http.post("/api/auth/register", json=payload)

        assert register("sam", None).json()["error"] == "invite_required"
        first = register("sam", code)
        assert first.status_code == 201, first.text
        http.cookies.clear()
        second = register("tess", code)
        assert (second.status_code, second.json()["error"]) == (403, "invalid_invite")
    assert re.search(r"^1\s.*\s1/1\s.*\sused up$", cli.ok("invites", "list"), re.M)
    assert set(cli.users()) == {"sam"}


# ---- the signal itself, on both brokers ----


@pytest.mark.anyio
@pytest.mark.parametrize(
    "broker",
    [
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
async def test_publish_signal_once_reaches_a_listening_node(
    request: pytest.FixtureRequest, broker: str
) -> None:
    channel = f"chat_test_{secrets.token_hex(6)}"
    if broker == "redis":
        from chat.broadcast.redis import RedisTransport

        url = redis_url()
        listener: Transport = RedisTransport(url, channel=channel)
    else:
        from chat.broadcast.postgres import PostgresTransport

        url = request.getfixturevalue("postgres_database").url
        listener = PostgresTransport(url, channel=channel)
    await listener.connect()
    try:
        await publish_signal_once(url, channel=channel, signal='{"kind":"test"}')
        received: list[Received] = []
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            received = [item for item in await listener.receive() if item.signal]
        assert [item.signal for item in received] == ['{"kind":"test"}']
    finally:
        await listener.shutdown()


# ---- a terminal ----


def run_at_terminal(cli: Cli, args: list[str], answers: list[str]) -> tuple[int, str, str]:
    """Run the command with a pseudo-terminal as stdin (and no controlling terminal, so getpass
    reads stdin and prompts on stderr); type each answer after the next prompt appears."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "chat", *args],
        cwd=cli.cwd,
        env=cli.env,
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    os.close(secondary)
    assert process.stderr is not None and process.stdout is not None
    stderr = b""
    try:
        for number, answer in enumerate(answers, start=1):
            stderr += _read_until(process.stderr.fileno(), stderr, prompts=number)
            # getpass has turned echo off (flushing input) before it prompts: type now.
            os.write(primary, answer.encode() + b"\n")
        out, rest = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT_S)
        os.close(primary)
    return process.returncode, out.decode(), (stderr + rest).decode()


def _read_until(fd: int, seen: bytes, *, prompts: int) -> bytes:
    """Read stderr until it holds `prompts` prompts (each ends with ': ') or the command ends."""
    got = b""
    deadline = time.monotonic() + TIMEOUT_S
    while (seen + got).count(b": ") < prompts:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no prompt within {TIMEOUT_S}s: {(seen + got)!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                return got  # the command ended (it may have refused the first answer)
            got += chunk
    return got
