"""What `chat users` and `chat invites` share: the account service opened against the configured
database, one command run with it, everything closed again, and every failure turned into one
line on stderr and exit status 1.

The command runs outside the server, so a revocation it causes (a disabled account, a new
password) reaches the running nodes through the broker when there is one (`NodeSignals`); with
memory:// nothing can reach the server, which closes the sockets at its next credential re-check.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from chat.auth.passwords import PasswordHashing
from chat.auth.principal import Revocation
from chat.auth.revocations import revocation_signal
from chat.auth.service import AccountService
from chat.broadcast.factory import crosses_processes, publish_signal_once
from chat.broadcast.relay import BrokerUnavailable
from chat.cli.database import add_database_url, database_problem, dispose
from chat.db import create_engine, create_sessionmaker
from chat.errors import ClientError
from chat.logs import configure_logging, redact
from chat.migrate import SchemaNotAtHead, prepare_schema
from chat.settings import Settings

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # the shell's status for a process stopped by Ctrl-C


class CommandFailed(Exception):
    """The command cannot do what was asked; the message says why, for the operator."""


@dataclass(slots=True)
class NodeSignals:
    """The `on_revoked` of the command's account service: tells the running nodes to close the
    sockets of revoked credentials, and remembers what it could not do, for the output."""

    settings: Settings
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    unreachable: int = 0  # revocations no broker could carry (memory://)

    async def __call__(self, revocation: Revocation) -> None:
        if not crosses_processes(self.settings.broadcast_url):
            self.unreachable += 1
            return
        try:
            await publish_signal_once(
                self.settings.broadcast_url,
                channel=self.settings.broadcast_channel,
                signal=revocation_signal(revocation),
            )
        except BrokerUnavailable as error:
            self.failures.append(redact(str(error)))
        else:
            self.sent += 1

    def outcome(self) -> str | None:
        """One sentence on when open sockets close; None when nothing was revoked."""
        recheck = f"{self.settings.auth_recheck_seconds:g}"
        if self.failures:
            return (
                f"could not reach the server nodes through the broker ({self.failures[0]}): "
                f"open sockets close within CHAT_AUTH_RECHECK_SECONDS ({recheck} s), when the "
                "nodes re-check credentials"
            )
        if self.unreachable:
            return (
                f"CHAT_BROADCAST_URL is {redact(self.settings.broadcast_url)}, which carries "
                "nothing from this command to the server: open sockets close within "
                f"CHAT_AUTH_RECHECK_SECONDS ({recheck} s), when the server re-checks credentials"
            )
        if self.sent:
            return "the server nodes were told through the broker to close the open sockets"
        return None


@dataclass(frozen=True, slots=True)
class Admin:
    """What a command runs with."""

    accounts: AccountService
    settings: Settings
    signals: NodeSignals

    def say_when_sockets_close(self) -> None:
        """After a revocation: whether the server nodes were told, or when they find out."""
        outcome = self.signals.outcome()
        if outcome is not None:
            print(outcome, file=sys.stderr if self.signals.failures else sys.stdout)


# A command runs in two steps: first it reads and checks its input (arguments, a password from
# stdin or the terminal) without the database, then it returns the work to do with it.
Command = Callable[[Admin], Awaitable[int]]
Action = Callable[[argparse.Namespace], Command]


def add_command(
    commands: Any,
    name: str,
    defaults: Settings,
    *,
    action: Action,
    help: str,
    description: str,
) -> argparse.ArgumentParser:
    """A subcommand that runs `action` against the database (its own --database-url, so the
    option may follow the subcommand's arguments)."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help, description=description)
    add_database_url(parser, defaults, subcommand=True)
    parser.set_defaults(action=action, prog=parser.prog)
    return parser


def run(args: argparse.Namespace, defaults: Settings) -> int:
    """Run the command `args` names against its database; its exit status, or 1 with one line
    on stderr when the input, the database, the schema or a rule says no."""
    prog: str = args.prog
    action: Action = args.action
    settings = defaults.with_overrides(database_url=args.database_url)
    # The command says what it did; the log only speaks up for trouble (or when asked to).
    configure_logging(
        level="debug" if settings.log_level == "debug" else "warning",
        log_format=settings.log_format,
    )
    try:
        command = action(args)
        return asyncio.run(_run(settings, command))
    except CommandFailed as error:
        return fail(prog, str(error))
    except ClientError as error:
        return fail(prog, error.detail)
    except SchemaNotAtHead as error:
        return fail(prog, str(error))
    except (SQLAlchemyError, OSError) as error:
        return fail(prog, database_problem(settings.database_url, error))
    except KeyboardInterrupt:
        print(file=sys.stderr)  # after a prompt, end its line
        return EXIT_INTERRUPTED


def fail(prog: str, message: str) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    return EXIT_FAILED


async def _run(settings: Settings, command: Command) -> int:
    engine = create_engine(settings)
    hashing = PasswordHashing(concurrency=1)
    try:
        # The same refusal as the server's: never write to a schema this code does not know.
        await prepare_schema(engine, migrate=False)
        signals = NodeSignals(settings)
        accounts = AccountService(
            sessionmaker=create_sessionmaker(engine),
            hashing=hashing,
            session_days=settings.session_days,
            registration=settings.registration,
            on_revoked=signals,
        )
        return await command(Admin(accounts=accounts, settings=settings, signals=signals))
    finally:
        hashing.close()
        await dispose(engine)
