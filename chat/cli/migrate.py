"""`chat migrate`: bring the configured database to the schema this code needs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from chat.cli.database import add_database_url, dispose, error_reason
from chat.db import create_engine
from chat.logs import configure_logging
from chat.migrate import SchemaStatus, database_location, schema_status, upgrade
from chat.settings import Settings

EXIT_BEHIND = 1
EXIT_FAILED = 1


def add_parser(commands: Any, defaults: Settings) -> None:
    parser = commands.add_parser(
        "migrate",
        help="upgrade the database schema to this version (safe to run again, and from any "
        "directory)",
        description="Upgrade CHAT_DATABASE_URL to the schema this version of chat needs. When "
        "several processes run it at once, one migrates and the others wait.",
    )
    add_database_url(parser, defaults, subcommand=True)
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing: say where the schema is and exit 1 unless it is up to date",
    )


def run(args: argparse.Namespace, defaults: Settings) -> int:
    settings = defaults.with_overrides(database_url=args.database_url)
    configure_logging(level=settings.log_level, log_format=settings.log_format)
    location = database_location(settings.database_url)
    try:
        status = asyncio.run(_migrate(settings, check_only=args.check))
    except (SQLAlchemyError, OSError) as error:
        print(f"chat migrate: cannot migrate {location}: {error_reason(error)}", file=sys.stderr)
        return EXIT_FAILED
    if status.at_head:
        print(f"{location}: schema at revision {status.head} (up to date)")
        return 0
    print(f"{location}: {status.describe()}", file=sys.stderr)
    return EXIT_BEHIND


async def _migrate(settings: Settings, *, check_only: bool) -> SchemaStatus:
    engine = create_engine(settings)
    try:
        return await schema_status(engine) if check_only else await upgrade(engine)
    finally:
        await dispose(engine)
