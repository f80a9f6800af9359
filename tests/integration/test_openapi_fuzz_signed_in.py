"""schemathesis again, signed in: every operation of the OpenAPI document called with a member's
API token answers as documented (no 5xx, no undocumented status or shape). The guest run in
test_openapi_fuzz.py never gets past the 401s of the signed-in routes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Fuzzed:
    server: LiveServer
    token: str  # the fuzzer's, a member's
    spare_session: str  # another member's session: mints tokens that only they can revoke


@pytest.fixture(scope="module")
def member_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    url = sqlite_url(Path(tmp_path_factory.mktemp("fuzz-signed-in")) / "chat.db")
    upgrade(url)
    with LiveServer(Settings(database_url=url, **UNLIMITED_RATES)) as server:
        # The first account from loopback becomes admin; the others are members.
        register(server, "owner")
        fuzzer = register(server, "fuzzer")
        spare = register(server, "spare")
        yield Fuzzed(server, new_token(server, fuzzer), spare)


def register(server: LiveServer, username: str) -> str:
    """A new account's session cookie."""
    made = httpx.post(
        f"{server.url}/api/auth/register",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    return made.cookies["chat_session"]


def new_token(server: LiveServer, session: str) -> str:
    made = httpx.post(
        f"{server.url}/api/tokens",
        json={"name": "fuzz"},
        headers={"Origin": server.url, "Cookie": f"chat_session={session}"},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema_signed_in(
    case: schemathesis.Case, member_server: Fuzzed
) -> None:
    server, token = member_server.server, member_server.token
    if case.method == "DELETE" and case.path == "/api/tokens/{token_id}":
        # Any id may come up, the fuzzer's own token's too: revoke as another member, with a
        # fresh token of theirs, so the run's sign-in survives and every id still gets a try.
        token = new_token(server, member_server.spare_session)
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
