"""The OpenAPI 3.1 description of the JSON API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from chat.openapi.accounts import ACCOUNT_PATHS
from chat.openapi.parts import (
    ERROR,
    MESSAGE,
    NEW_MESSAGE,
    PAGE,
    error_response,
    history,
    post_message,
)
from chat.openapi.rooms import (
    EVENTS,
    MEMBER,
    PRESENCE,
    PUBLIC_USER,
    ROOM_PATHS,
    ROOM_SCHEMA,
    USER,
)
from chat.openapi.search import SEARCH_PATHS, SEARCH_RESULT, SEARCH_RESULTS

OPENAPI_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "chat",
        "version": "1",
        "description": "Accounts, rooms and direct messages, history, posting, edits, deletes, "
        "reactions, presence and catch-up. Live changes flow over the WebSocket at /chatsocket "
        "(see docs/protocol.md). A caller signs in with the session cookie or a personal API "
        "token (`Authorization: Bearer`); a private room or DM the caller is not in answers 404, "
        "exactly as a room that never existed.",
    },
    "paths": {
        "/api/messages": {
            "get": history("listMessages", "A page of the general room's history"),
            "post": post_message("createMessage", "Post a message in the general room"),
        },
        **ROOM_PATHS,
        **ACCOUNT_PATHS,
        **SEARCH_PATHS,
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "operationId": "health",
                "responses": {"200": {"description": "The process is alive"}},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (only with CHAT_METRICS=true)",
                "description": 'The Prometheus text format; see README "Metrics" for every '
                "metric. When CHAT_METRICS_TOKEN is set a scrape must send "
                "`Authorization: Bearer <token>`.",
                "operationId": "metrics",
                # The token is needed only when the server has one configured.
                "security": [{"metricsToken": []}, {}],
                "responses": {
                    "200": {
                        "description": "Every metric, as Prometheus scrapes it",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": error_response("CHAT_METRICS_TOKEN is set and was not sent"),
                    "404": {
                        "description": "Metrics are off (CHAT_METRICS is not true)",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the database and the broadcast backend answer",
                "operationId": "ready",
                "responses": {
                    "200": {"description": "Ready"},
                    "503": {"description": "Not ready"},
                },
            }
        },
    },
    "components": {
        "schemas": {
            "Message": MESSAGE,
            "Page": PAGE,
            "NewMessage": NEW_MESSAGE,
            "Error": ERROR,
            "PublicUser": PUBLIC_USER,
            "User": USER,
            "Room": ROOM_SCHEMA,
            "Member": MEMBER,
            "Presence": PRESENCE,
            "Events": EVENTS,
            "SearchResult": SEARCH_RESULT,
            "SearchResults": SEARCH_RESULTS,
        },
        "securitySchemes": {
            "metricsToken": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "chat_session"},
            "token": {"type": "http", "scheme": "bearer"},
        },
    },
}
