"""schemathesis drives the real server from its OpenAPI document: no 5xx, no response that
breaks the schema, invalid input rejected, valid input accepted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from chat.openapi import OPENAPI_DOCUMENT
from chat.settings import Settings
from tests.conftest import UNLIMITED_RATES
from tests.support.asgi import declared_routes, unstarted_app
from tests.support.database import sqlite_url, upgrade
from tests.support.live import LiveServer

schema = schemathesis.openapi.from_dict(OPENAPI_DOCUMENT)


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = sqlite_url(Path(tmp_path_factory.mktemp("fuzz")) / "chat.db")
    upgrade(url)
    with LiveServer(Settings(database_url=url, **UNLIMITED_RATES)) as server:
        yield server


def beyond_the_schema(case: schemathesis.Case) -> list[schemathesis.CheckFunction]:
    """Checks a case cannot pass for reasons OpenAPI cannot express; every other check, never a
    5xx above all, still applies. Shared with the signed-in run (test_openapi_fuzz_signed_in)."""
    excluded: list[schemathesis.CheckFunction] = []
    cursors = {"before", "after", "around"} & set(case.query or {})
    if case.method == "GET" and (len(cursors) > 1 or "around" in cursors):
        # OpenAPI cannot say that query parameters exclude each other (the server answers 400
        # conflicting_cursors, which test_api checks), nor which ids exist (around= an id that
        # is no message answers 404).
        excluded.append(positive_data_acceptance)
    if case.path == "/api/search":
        # A query is free text in a grammar OpenAPI cannot describe: text the schema allows
        # may still be a malformed query (400 invalid_query).
        excluded.append(positive_data_acceptance)
    if case.method == "POST" and case.path == "/api/auth/register":
        # Reserved names and the most common passwords are refused with 400 (test_auth_pages
        # and the accounts tests check them); a schema cannot list them.
        excluded.append(positive_data_acceptance)
    if "{emoji}" in case.path:
        # One emoji (any of Unicode's, with its modifiers) is not a pattern a schema can
        # hold; other text is 400 invalid_emoji (the conversation tests check which).
        excluded.append(positive_data_acceptance)
    return excluded


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case, fuzzed_server: LiveServer) -> None:
    case.call_and_validate(base_url=fuzzed_server.url, excluded_checks=beyond_the_schema(case))


def test_every_api_route_is_in_the_document() -> None:
    """A route under /api/ that the document leaves out is one schemathesis never tries."""
    routes = {
        (method.lower(), path)
        for method, path in declared_routes(unstarted_app())
        if path.startswith("/api/")
    }
    documented = {
        (method, path)
        for path, operations in OPENAPI_DOCUMENT["paths"].items()
        for method in operations
        if path.startswith("/api/")
    }
    assert sorted(routes - documented) == []
    assert sorted(documented - routes) == []
