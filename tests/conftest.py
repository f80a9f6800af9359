"""Fixtures shared by every tier: migrated temporary SQLite files and live servers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chat.db import create_engine, create_sessionmaker
from chat.settings import Settings
from tests.support.callers import seeded_world  # noqa: F401
from tests.support.database import sqlite_url, upgrade
from tests.support.live import LiveServer
from tests.support.oidc import make_oidc_provider, oidc_provider  # noqa: F401
from tests.support.postgres import PostgresDatabase, postgres_database  # noqa: F401

# Under CI the property-based tests replay the same examples every run, so a red build always
# reproduces; locally they explore new examples each time.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshot-to",
        metavar="PATH",
        default=None,
        help="where the screenshot test writes its picture (default: a temporary file); "
        "`--screenshot-to docs/screenshot.png` regenerates the README's on purpose",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Playwright's sync API leaves an event loop running in the main thread; any anyio test
    # collected after a browser test would fail. Browser tests therefore run last.
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh SQLite file, migrated to head by Alembic.

    Parametrized with "postgres" (tests.support.postgres.BOTH_ENGINES) it is instead this run's
    PostgreSQL database, migrated once and emptied for each test.
    """
    if getattr(request, "param", "sqlite") == "postgres":
        postgres: PostgresDatabase = request.getfixturevalue("postgres_database")
        return postgres.fresh()
    url = sqlite_url(tmp_path / "chat.db")
    upgrade(url)
    return url


# Tests seed hundreds of messages from one address; the rate-limit tests set their own limits.
UNLIMITED_RATES = {
    "post_rate_per_second": 1e6,
    "post_rate_burst": 1_000_000,
    "socket_rate_per_second": 1e6,
    "socket_rate_burst": 1_000_000,
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, **UNLIMITED_RATES)


@pytest.fixture
async def sessionmaker(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database, for services built by hand."""
    engine = create_engine(settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def make_server(settings: Settings) -> Iterator[ServerFactory]:
    """Start live servers on the test database; keyword arguments override settings."""
    started: list[LiveServer] = []

    def factory(**overrides: Any) -> LiveServer:
        server = LiveServer(settings.with_overrides(**overrides)).start()
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        server.stop()


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server()
