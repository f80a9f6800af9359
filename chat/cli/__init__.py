"""The `chat` command (also `python -m chat`): serve by default, or run an admin subcommand
(`migrate`, `users`, `invites`).

Every option also reads a CHAT_* environment variable; the environment is read once into
Settings, flags override it, and the result is passed down.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chat.cli import admin, invites, migrate, serve, users
from chat.settings import Settings, SettingsError

PROG = "chat"


def build_parser(defaults: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A real-time chat server. Without a command it serves; every option also "
        "reads a CHAT_* environment variable.",
    )
    serve.add_arguments(parser, defaults)
    commands = parser.add_subparsers(dest="command", metavar="command")
    migrate.add_parser(commands, defaults)
    users.add_parser(commands, defaults)
    invites.add_parser(commands, defaults)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        defaults = Settings.from_env()
    except SettingsError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    parser = build_parser(defaults)
    args = parser.parse_args(argv)
    try:
        if args.command == "migrate":
            return migrate.run(args, defaults)
        if args.command in ("users", "invites"):
            return admin.run(args, defaults)
        return serve.run(args, defaults)
    except SettingsError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
