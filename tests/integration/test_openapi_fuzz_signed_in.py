"""schemathesis again, signed in: every operation of the OpenAPI document called with a member's
API token answers as documented (no 5xx, no undocumented status or shape). The guest run in
test_openapi_fuzz.py never gets past the 401s of the signed-in routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from chat.openapi import OPENAPI_DOCUMENT
from chat.settings import Settings
from tests.conftest import UNLIMITED_RATES
from tests.integration.test_openapi_fuzz import beyond_the_schema
from tests.support.database import sqlite_url, upgrade
from tests.support.live import LiveServer

schema = schemathesis.openapi.from_dict(OPENAPI_DOCUMENT)
PASSWORD = "fuzzing is a long passphrase"


@pytest.fixture(scope="module")
def member_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    url = sqlite_url(Path(tmp_path_factory.mktemp("fuzz-signed-in")) / "chat.db")
    upgrade(url)
    with LiveServer(Settings(database_url=url, **UNLIMITED_RATES)) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            # The first account from loopback becomes admin; the fuzzer is the second, a member.
            for username in ("owner", "fuzzer"):
                made = http.post(
                    "/api/auth/register", json={"username": username, "password": PASSWORD}
                )
                assert made.status_code == 201, made.text
            token = new_token(http, server.url)
        yield server, token


def new_token(http: httpx.Client, origin: str, headers: dict[str, str] | None = None) -> str:
    made = http.post(
        "/api/tokens", json={"name": "fuzz"}, headers={"Origin": origin, **(headers or {})}
    )
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema_signed_in(
    case: schemathesis.Case, member_server: tuple[LiveServer, str]
) -> None:
    server, token = member_server
    if case.method == "DELETE" and case.path == "/api/tokens/{token_id}":
        # A token of its own, so revoking it (any id may come up) cannot end the run's sign-in.
        with httpx.Client(base_url=server.url, timeout=30) as http:
            token = new_token(http, server.url, {"Authorization": f"Bearer {token}"})
    excluded = beyond_the_schema(case)
    if case.path in ("/api/auth/logout", "/api/auth/logout-everywhere"):
        excluded.append(positive_data_acceptance)  # a Bearer caller has no session to end
    # The guest run checks that bad or missing credentials are refused; here every request
    # carries the member's token, which schemathesis's auth probes would only see accepted.
    excluded.append(ignored_auth)
    case.call_and_validate(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token}"},
        excluded_checks=excluded,
    )
