"""`chat invites`: make invite codes (for CHAT_REGISTRATION=invite), list and revoke them.

A code is shown once, when it is made, alone on stdout (`CODE=$(chat invites add)`); the
database keeps only its digest, so a listing shows hints, never codes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from chat.auth.repository import InviteRecord
from chat.cli.admin import Admin, Command, CommandFailed, add_command
from chat.cli.table import format_table, format_time
from chat.settings import Settings

_DURATION = re.compile(r"([0-9]{1,6})([dhm])")
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h` or `30m`."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a number and d, h or m, such as 7d, 12h or 30m"
        )
    return int(match[1]) * _UNITS[match[2]]


def add_parser(commands: Any, defaults: Settings) -> None:
    parser = commands.add_parser(
        "invites",
        help="make, list and revoke invite codes (CHAT_REGISTRATION=invite)",
        description="Manage the invite codes in CHAT_DATABASE_URL. With CHAT_REGISTRATION=invite "
        "registering needs one; a code registers up to its number of uses before it expires.",
    )
    actions = parser.add_subparsers(dest="action_name", metavar="command", required=True)

    add = add_command(
        actions,
        "add",
        defaults,
        action=_add,
        help="make an invite code and print it (only this once)",
        description="Make an invite code. The code alone goes to stdout, so CODE=$(chat invites "
        "add) works; what it is good for goes to stderr. It is never shown again.",
    )
    add.add_argument(
        "--uses", type=int, default=1, metavar="N", help="registrations it allows (default 1)"
    )
    add.add_argument(
        "--expires-in",
        type=parse_duration,
        default=timedelta(days=7),
        metavar="DURATION",
        help="how long it lasts: 7d, 12h, 30m (default 7d; at most 365d)",
    )

    listing = add_command(
        actions,
        "list",
        defaults,
        action=_list,
        help="list the invites (hints, never codes)",
        description="List every invite: a table, or one JSON object per line with --json. Codes "
        "are not stored, so only their hints show.",
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per invite")

    revoke = add_command(
        actions,
        "revoke",
        defaults,
        action=_revoke,
        help="revoke an invite: it registers nobody from now on",
        description="Revoke an invite (ID from `chat invites list`): it registers nobody from "
        "now on. Accounts it already made stay.",
    )
    revoke.add_argument("invite_id", type=int, metavar="ID")


def _add(args: argparse.Namespace) -> Command:
    uses: int = args.uses
    valid_for: timedelta = args.expires_in

    async def add(admin: Admin) -> int:
        invite = await admin.accounts.create_invite(
            created_by=None, max_uses=uses, valid_for=valid_for
        )
        record = invite.record
        print(invite.code)
        plural = "" if record.max_uses == 1 else "s"
        print(
            f"invite {record.id} ({record.hint}): {record.max_uses} registration{plural}, "
            f"until {format_time(record.expires_at)}; the code is not shown again",
            file=sys.stderr,
        )
        if admin.settings.registration != "invite":
            print(
                f"note: CHAT_REGISTRATION is {admin.settings.registration!r} here; the server "
                "asks for invite codes only with CHAT_REGISTRATION=invite",
                file=sys.stderr,
            )
        return 0

    return add


def _list(args: argparse.Namespace) -> Command:
    as_json: bool = args.json

    async def list_invites(admin: Admin) -> int:
        invites = await admin.accounts.invites()
        if as_json:
            for invite in invites:
                print(json.dumps(invite.to_dict(), ensure_ascii=False))
            return 0
        now = datetime.now(UTC)
        header = ("id", "hint", "used", "created", "expires", "state")
        rows = [
            (
                str(invite.id),
                invite.hint,
                f"{invite.uses}/{invite.max_uses}",
                format_time(invite.created_at),
                format_time(invite.expires_at),
                _state(invite, now),
            )
            for invite in invites
        ]
        print(format_table(header, rows))
        return 0

    return list_invites


def _revoke(args: argparse.Namespace) -> Command:
    invite_id: int = args.invite_id

    async def revoke(admin: Admin) -> int:
        found = [invite for invite in await admin.accounts.invites() if invite.id == invite_id]
        if not found:
            raise CommandFailed(f"no invite with id {invite_id}")
        if found[0].revoked_at is not None:
            print(f"invite {invite_id} is already revoked")
            return 0
        await admin.accounts.revoke_invite(invite_id)
        print(f"revoked invite {invite_id} ({found[0].hint}): it registers nobody from now on")
        return 0

    return revoke


def _state(invite: InviteRecord, now: datetime) -> str:
    if invite.revoked_at is not None:
        return "revoked"
    if invite.expires_at <= now:
        return "expired"
    if invite.uses >= invite.max_uses:
        return "used up"
    return "live"
