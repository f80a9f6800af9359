"""`chat users`: add accounts, list them, disable and enable them, set passwords, make admins.

Passwords never come from the command line (it shows in `ps` and shell histories): they are
typed twice at a terminal, or read from stdin with `--password-stdin` for scripts.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from chat.auth.names import parse_display_name, parse_new_username, parse_username
from chat.auth.passwords import check_password_rules
from chat.auth.repository import UserRecord
from chat.cli.admin import Admin, Command, CommandFailed, add_command
from chat.cli.table import format_table, format_time
from chat.errors import ClientError
from chat.settings import Settings

LAST_ADMIN_ADVICE = "promote another account first, or pass --force"


def add_parser(commands: Any, defaults: Settings) -> None:
    parser = commands.add_parser(
        "users",
        help="add, list, disable and enable accounts, set passwords, promote and demote admins",
        description="Manage the accounts in CHAT_DATABASE_URL (SQLite or PostgreSQL), with or "
        "without a server running. Disabling an account or setting its password ends its "
        "sessions at once; with CHAT_BROADCAST_URL on Redis or PostgreSQL the running server "
        "nodes also close its open sockets at once.",
    )
    actions = parser.add_subparsers(dest="action_name", metavar="command", required=True)

    add = add_command(
        actions,
        "add",
        defaults,
        action=_add,
        help="add an account",
        description="Add an account. The password is typed twice at a terminal, or read from "
        "stdin with --password-stdin; never give it as an argument.",
    )
    add.add_argument("username", metavar="USERNAME", help="1-32 characters: a-z 0-9 _ . -")
    add.add_argument(
        "--display-name", metavar="NAME", help="the name people see (default: USERNAME)"
    )
    add.add_argument("--admin", action="store_true", help="make the account an admin")
    _password_source(add, allow_none=True)

    listing = add_command(
        actions,
        "list",
        defaults,
        action=_list,
        help="list the accounts",
        description="List every account: a table, or one JSON object per line with --json.",
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per account")

    disable = add_command(
        actions,
        "disable",
        defaults,
        action=_disable,
        help="disable an account: its sessions end, its tokens stop working",
        description="Disable an account: it cannot sign in, every session ends, its API tokens "
        "stop working and its open sockets close. The last enabled admin is kept unless you "
        "pass --force.",
    )
    disable.add_argument("username", metavar="USERNAME")
    disable.add_argument(
        "--force", action="store_true", help="disable it even if it is the last enabled admin"
    )

    enable = add_command(
        actions,
        "enable",
        defaults,
        action=_enable,
        help="enable a disabled account",
        description="Let a disabled account sign in again (its old sessions stay ended).",
    )
    enable.add_argument("username", metavar="USERNAME")

    set_password = add_command(
        actions,
        "set-password",
        defaults,
        action=_set_password,
        help="set an account's password: its sessions end",
        description="Set the password of an account; every session of the account ends (a leaked "
        "one is dead at once). The password is typed twice at a terminal, or read from stdin "
        "with --password-stdin.",
    )
    set_password.add_argument("username", metavar="USERNAME")
    _password_source(set_password, allow_none=False)

    promote = add_command(
        actions,
        "promote",
        defaults,
        action=_promote,
        help="make an account an admin",
        description="Make an account an admin: it can manage accounts and invites.",
    )
    promote.add_argument("username", metavar="USERNAME")

    demote = add_command(
        actions,
        "demote",
        defaults,
        action=_demote,
        help="make an admin a member again",
        description="Make an admin a member. The last enabled admin is kept unless you pass "
        "--force.",
    )
    demote.add_argument("username", metavar="USERNAME")
    demote.add_argument(
        "--force", action="store_true", help="demote it even if it is the last enabled admin"
    )


def _password_source(parser: argparse.ArgumentParser, *, allow_none: bool) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (one line), for scripts",
    )
    if allow_none:
        source.add_argument(
            "--no-password",
            action="store_true",
            help="no password: the account signs in only through single sign-on or a trusted proxy",
        )


# ---- the commands ----


def _add(args: argparse.Namespace) -> Command:
    username = parse_new_username(args.username)
    display_name = parse_display_name(args.display_name, default=username)
    password = None if args.no_password else _read_new_password(args, username, allow_none=True)
    role = "admin" if args.admin else "member"

    async def add(admin: Admin) -> int:
        account = await admin.accounts.add_user(
            username=username, password=password, display_name=display_name, role=role
        )
        how = (
            "signs in only through single sign-on or a trusted proxy"
            if password is None
            else "signs in with the password given"
        )
        print(f"added {role} {account.username!r} (id {account.id}); it {how}")
        return 0

    return add


def _list(args: argparse.Namespace) -> Command:
    as_json: bool = args.json

    async def list_users(admin: Admin) -> int:
        users = await admin.accounts.users()
        if as_json:
            for user in users:
                print(json.dumps(user.to_dict(), ensure_ascii=False))
            return 0
        header = ("id", "username", "display name", "role", "disabled", "created", "last seen")
        rows = [
            (
                str(user.account.id),
                user.account.username,
                user.account.display_name,
                user.account.role,
                "yes" if user.disabled else "no",
                format_time(user.created_at),
                format_time(user.last_seen_at) if user.last_seen_at else "never",
            )
            for user in users
        ]
        print(format_table(header, rows))
        return 0

    return list_users


def _disable(args: argparse.Namespace) -> Command:
    username: str = args.username
    force: bool = args.force

    async def disable(admin: Admin) -> int:
        user = await _find(admin, username)
        name = user.account.username
        if user.disabled:
            print(f"{name!r} is already disabled")
            return 0
        if user.account.is_admin and not force and not await _other_enabled_admins(admin, user):
            raise CommandFailed(
                f"refusing to disable {name!r}: it is the last enabled admin, and nobody could "
                f"manage accounts from the web any more; {LAST_ADMIN_ADVICE}"
            )
        await admin.accounts.set_disabled(user.account.id, True)
        print(f"disabled {name!r}: every session ended and its API tokens stopped working")
        admin.say_when_sockets_close()
        return 0

    return disable


def _enable(args: argparse.Namespace) -> Command:
    username: str = args.username

    async def enable(admin: Admin) -> int:
        user = await _find(admin, username)
        name = user.account.username
        if not user.disabled:
            print(f"{name!r} is already enabled")
            return 0
        await admin.accounts.set_disabled(user.account.id, False)
        print(f"enabled {name!r}: it can sign in again")
        return 0

    return enable


def _set_password(args: argparse.Namespace) -> Command:
    username = _lookup_name(args.username)
    password = _read_new_password(args, username, allow_none=False)

    async def set_password(admin: Admin) -> int:
        user = await _find(admin, username)
        await admin.accounts.set_password(user.account.id, password)
        print(f"set the password of {user.account.username!r} and ended its sessions")
        admin.say_when_sockets_close()
        return 0

    return set_password


def _promote(args: argparse.Namespace) -> Command:
    username: str = args.username

    async def promote(admin: Admin) -> int:
        user = await _find(admin, username)
        name = user.account.username
        if user.account.is_admin:
            print(f"{name!r} is already an admin")
            return 0
        await admin.accounts.set_role(user.account.id, "admin")
        disabled = " (the account is disabled: enable it to use it)" if user.disabled else ""
        print(f"{name!r} is an admin now{disabled}")
        return 0

    return promote


def _demote(args: argparse.Namespace) -> Command:
    username: str = args.username
    force: bool = args.force

    async def demote(admin: Admin) -> int:
        user = await _find(admin, username)
        name = user.account.username
        if not user.account.is_admin:
            print(f"{name!r} is not an admin")
            return 0
        last = not user.disabled and not await _other_enabled_admins(admin, user)
        if last and not force:
            raise CommandFailed(
                f"refusing to demote {name!r}: it is the last enabled admin, and nobody could "
                f"manage accounts from the web any more; {LAST_ADMIN_ADVICE}"
            )
        await admin.accounts.set_role(user.account.id, "member")
        print(f"{name!r} is a member now")
        return 0

    return demote


# ---- helpers ----


def _lookup_name(username: str) -> str:
    """The stored form of a username given on the command line; a name that cannot exist is
    simply not found."""
    try:
        return parse_username(username)
    except ClientError:
        raise CommandFailed(f"no user named {username!r}") from None


async def _find(admin: Admin, username: str) -> UserRecord:
    user = await admin.accounts.user(_lookup_name(username))
    if user is None:
        raise CommandFailed(f"no user named {username!r}")
    return user


async def _other_enabled_admins(admin: Admin, user: UserRecord) -> int:
    # Checked here, not in one transaction with the change: two operators demoting the last two
    # admins at the same moment could both pass. This guards against a slip, not a race.
    return sum(
        1
        for other in await admin.accounts.users()
        if other.account.is_admin and not other.disabled and other.account.id != user.account.id
    )


def _read_new_password(args: argparse.Namespace, username: str, *, allow_none: bool) -> str:
    """The new password: one line of stdin with --password-stdin, else typed twice at the
    terminal (checked against the password rules before the second prompt)."""
    if args.password_stdin:
        return _password_from_stdin()
    if not sys.stdin.isatty():
        alternative = " (or --no-password for an account without one)" if allow_none else ""
        raise CommandFailed(
            "stdin is not a terminal to type a password at: pass --password-stdin to read it "
            f"from stdin{alternative}"
        )
    try:
        first = getpass.getpass(f"New password for {username}: ")
        check_password_rules(first)
        second = getpass.getpass("Type it again: ")
    except EOFError:
        raise CommandFailed("no password typed; nothing changed") from None
    if first != second:
        raise CommandFailed("the two passwords differ; nothing changed")
    return first


def _password_from_stdin() -> str:
    try:
        text = sys.stdin.read()
    except UnicodeDecodeError:
        # The error would quote a byte of the password: say no more than this.
        raise CommandFailed("--password-stdin: stdin is not UTF-8 text") from None
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise CommandFailed("--password-stdin: stdin holds no password")
    if "\n" in password:
        raise CommandFailed("--password-stdin: give the password alone on one line")
    return password
