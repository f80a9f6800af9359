"""Liveness and readiness as a load balancer sees them."""

from __future__ import annotations

from pathlib import Path

import httpx

from chat.settings import Settings
from tests.support.live import LiveServer


def test_readiness_fails_when_the_database_has_no_schema(tmp_path: Path) -> None:
    # An operator who forgot `alembic upgrade head`: alive, but not ready for traffic.
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    with LiveServer(Settings(database_url=url)) as server, httpx.Client(base_url=server.url) as c:
        assert c.get("/healthz").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] is False
