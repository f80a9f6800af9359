"""The HTTP API against a real uvicorn server, checked against its own OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from chat.openapi import OPENAPI_DOCUMENT
from tests.support.live import LiveServer
from tests.support.postgres import BOTH_ENGINES

pytestmark = BOTH_ENGINES


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def schema_validator(name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": OPENAPI_DOCUMENT["components"]}
    return Draft202012Validator(schema)


def assert_matches(name: str, payload: Any) -> None:
    errors = list(schema_validator(name).iter_errors(payload))
    assert not errors, [error.message for error in errors]


def post(client: httpx.Client, **payload: Any) -> httpx.Response:
    return client.post("/api/messages", json=payload)


def test_openapi_document_is_valid_and_served(client: httpx.Client) -> None:
    validate_spec(OPENAPI_DOCUMENT)
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.json() == OPENAPI_DOCUMENT


def test_schemas_can_reject(client: httpx.Client) -> None:
    # The contract checks below mean something only if a wrong payload fails them.
    assert list(schema_validator("Message").iter_errors({"id": "1"}))
    assert list(schema_validator("Page").iter_errors({"messages": [], "has_older": 1}))


def test_post_then_read_back(client: httpx.Client) -> None:
    response = post(client, body="hello <b>world</b> www.example.com", author="ada")
    assert response.status_code == 201
    message = response.json()
    assert_matches("Message", message)
    assert message["body"] == "hello <b>world</b> www.example.com"
    assert message["author"] == "ada"
    assert message["created_at"].endswith("Z")
    assert f'id="m{message["id"]}"' in message["html"]
    assert "&lt;b&gt;" in message["html"]
    assert 'href="http://www.example.com"' in message["html"]

    page = client.get("/api/messages").json()
    assert_matches("Page", page)
    assert [m["id"] for m in page["messages"]] == [message["id"]]
    assert page["messages"][0] == message


def test_client_id_makes_posting_idempotent(client: httpx.Client) -> None:
    first = post(client, body="once", client_id="retry-1")
    again = post(client, body="once, resent", client_id="retry-1")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    bodies = [m["body"] for m in client.get("/api/messages").json()["messages"]]
    assert bodies == ["once"]


def test_pages_and_cursors(client: httpx.Client) -> None:
    ids = [post(client, body=f"m{n}").json()["id"] for n in range(12)]
    newest = client.get("/api/messages", params={"limit": 5}).json()
    assert [m["id"] for m in newest["messages"]] == ids[-5:]
    assert newest["has_older"] and not newest["has_newer"]
    assert newest["older_cursor"] == ids[-5]
    assert newest["newer_cursor"] == ids[-1]

    older = client.get("/api/messages", params={"before": newest["older_cursor"], "limit": 5})
    older_page = older.json()
    assert_matches("Page", older_page)
    assert [m["id"] for m in older_page["messages"]] == ids[-10:-5]
    assert older_page["has_older"] and older_page["has_newer"]

    catch_up = client.get("/api/messages", params={"after": ids[3], "limit": 3}).json()
    assert [m["id"] for m in catch_up["messages"]] == ids[4:7]
    assert catch_up["has_newer"] and catch_up["has_older"]

    caught_up = client.get("/api/messages", params={"after": ids[-1]}).json()
    assert caught_up["messages"] == []
    assert caught_up["newer_cursor"] == ids[-1]
    assert not caught_up["has_newer"]


def test_extreme_cursors_are_valid_pages(client: httpx.Client) -> None:
    post(client, body="only")
    largest = 2**63 - 1
    after = client.get("/api/messages", params={"after": largest})
    assert after.status_code == 200
    assert after.json()["messages"] == [] and after.json()["has_older"]
    before = client.get("/api/messages", params={"before": largest})
    assert [m["body"] for m in before.json()["messages"]] == ["only"]


def test_limit_is_capped(client: httpx.Client, server: LiveServer) -> None:
    for n in range(server.settings.history_page_max + 5):
        assert post(client, body=f"n{n}").status_code == 201
    page = client.get("/api/messages", params={"limit": 10**15}).json()
    assert len(page["messages"]) == server.settings.history_page_max


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=abc", "invalid_parameter"),
        ("limit=0", "invalid_parameter"),
        ("limit=-3", "invalid_parameter"),
        ("limit=2.5", "invalid_parameter"),
        ("before=0", "invalid_parameter"),
        ("before=-1", "invalid_parameter"),
        ("after=x", "invalid_parameter"),
        ("after=" + "9" * 30, "invalid_parameter"),
        ("after=9223372036854775808", "invalid_parameter"),
        ("before=1%00", "invalid_parameter"),
        ("before=1;DROP TABLE messages", "invalid_parameter"),
        ("before=1' OR '1'='1", "invalid_parameter"),
        ("before=5&after=2", "conflicting_cursors"),
        ("limit=5&limit=6", "duplicate_parameter"),
        ("offset=10", "unknown_parameter"),
        ("before=", "invalid_parameter"),
    ],
)
def test_bad_parameters_are_400_with_json(client: httpx.Client, query: str, code: str) -> None:
    response = client.get(f"/api/messages?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert_matches("Error", response.json())
    assert response.json()["error"] == code


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({}, 400, "missing_body"),
        ({"body": ""}, 400, "empty_body"),
        ({"body": "  "}, 400, "empty_body"),
        ({"body": 3}, 400, "invalid_body"),
        ({"body": "x" * 2001}, 400, "body_too_long"),
        ({"body": "hi", "author": ["a"]}, 400, "invalid_author"),
        ({"body": "hi", "client_id": "k" * 65}, 400, "invalid_client_id"),
        ([1, 2], 400, "invalid_frame"),
    ],
)
def test_bad_posts_are_rejected_and_store_nothing(
    client: httpx.Client, payload: Any, status: int, code: str
) -> None:
    response = client.post("/api/messages", json=payload)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert client.get("/api/messages").json()["messages"] == []


def test_malformed_and_oversized_bodies(client: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    bad_json = client.post("/api/messages", content=b"{not json", headers=headers)
    assert (bad_json.status_code, bad_json.json()["error"]) == (400, "invalid_json")
    invalid_utf8 = client.post("/api/messages", content=b'{"body": "\xff"}', headers=headers)
    assert (invalid_utf8.status_code, invalid_utf8.json()["error"]) == (400, "invalid_json")
    huge = client.post("/api/messages", content=b"[" + b" " * 100_000 + b"]", headers=headers)
    assert (huge.status_code, huge.json()["error"]) == (413, "body_too_large")
    form = client.post("/api/messages", data={"body": "hi"})
    assert (form.status_code, form.json()["error"]) == (415, "unsupported_media_type")
    assert client.get("/api/messages").json()["messages"] == []


def test_unknown_api_paths_and_methods_are_json(client: httpx.Client) -> None:
    missing = client.get("/api/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong_method = client.delete("/api/messages")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "schema": True, "broadcast": True}


def test_security_headers(client: httpx.Client) -> None:
    headers = client.get("/api/messages").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"


def test_messages_survive_a_server_restart(make_server: Any) -> None:
    first = make_server()
    with httpx.Client(base_url=first.url, timeout=10) as client:
        stored = [post(client, body=f"keep {n}").json() for n in range(3)]
    first.stop()
    second = make_server()
    with httpx.Client(base_url=second.url, timeout=10) as client:
        assert client.get("/api/messages").json()["messages"] == stored
    json.dumps(stored)  # plain JSON all the way through
