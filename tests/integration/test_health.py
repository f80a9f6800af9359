"""Liveness and readiness as a load balancer sees them, and the schema guard at start-up."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from chat.settings import Settings
from tests.support.database import downgrade, sqlite_url, upgrade
from tests.support.live import LiveServer


def test_the_server_refuses_to_start_on_a_database_without_the_schema(tmp_path: Path) -> None:
    # An operator who forgot `chat migrate`: no half-working server that answers 500s.
    url = sqlite_url(tmp_path / "empty.db")
    with pytest.raises(RuntimeError, match="did not start"):
        LiveServer(Settings(database_url=url)).start()


def test_migrate_on_start_brings_an_empty_database_to_head(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    settings = Settings(database_url=sqlite_url(path), migrate_on_start=True)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/readyz").json()["checks"] == {
            "database": True,
            "schema": True,
            "broadcast": True,
        }
        assert client.post("/api/messages", json={"body": "hi"}).status_code == 201
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM messages").fetchone() == (1,)


def test_readiness_fails_while_the_schema_is_not_the_one_the_code_needs(
    database_url: str,
) -> None:
    with (
        LiveServer(Settings(database_url=database_url)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert client.get("/readyz").status_code == 200
        # Someone restores an older copy of the database under the running server.
        downgrade(database_url, "base")
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": True, "schema": False, "broadcast": True}
        assert client.get("/healthz").status_code == 200  # alive all the same
        upgrade(database_url)
        assert client.get("/readyz").status_code == 200
