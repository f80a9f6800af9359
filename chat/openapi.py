"""The OpenAPI 3.1 description of the JSON API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

# NUL characters are refused everywhere; a body also needs one character that is not a space.
# "Space" as Python's str.strip() means it, which is ECMA's \s plus U+001C-U+001F and U+0085.
_NO_NUL = "^[^\\u0000]*$"
_NO_NUL_SOME_TEXT = "^[^\\u0000]*[^\\s\\u0000\\u001c-\\u001f\\u0085][^\\u0000]*$"

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}

_MESSAGE = {
    "type": "object",
    "required": ["type", "id", "body", "html", "author", "created_at", "client_id"],
    "properties": {
        "type": {"const": "message"},
        "id": {"type": "integer", "minimum": 1},
        "body": {"type": "string"},
        "html": {"type": "string"},
        "author": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "client_id": {"type": ["string", "null"], "maxLength": 64},
    },
}

_PAGE = {
    "type": "object",
    "required": ["messages", "has_older", "has_newer", "older_cursor", "newer_cursor"],
    "properties": {
        "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
        "has_older": {"type": "boolean"},
        "has_newer": {"type": "boolean"},
        "older_cursor": {"type": ["integer", "null"]},
        "newer_cursor": {"type": ["integer", "null"]},
    },
}

_NEW_MESSAGE = {
    "type": "object",
    "required": ["body"],
    "properties": {
        "body": {
            "type": "string",
            "minLength": 1,
            "maxLength": 2000,
            "pattern": _NO_NUL_SOME_TEXT,
            "description": "At least one non-space character, no NUL; the length limit is "
            "CHAT_MAX_MESSAGE_CHARS (2000 by default).",
        },
        "author": {"type": ["string", "null"], "maxLength": 64, "pattern": _NO_NUL},
        "client_id": {
            "type": ["string", "null"],
            "minLength": 1,
            "maxLength": 64,
            "pattern": _NO_NUL,
        },
    },
}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _cursor_parameter(name: str, description: str, minimum: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": 2**63 - 1},
    }


# ---- search (chat.search) ----

_SEARCH_RESULT = {
    "description": "A message object (as in history pages and frames) with where it is and "
    "why it matched.",
    "allOf": [
        {"$ref": "#/components/schemas/Message"},
        {
            "type": "object",
            "required": ["room", "room_title", "snippet", "permalink"],
            "properties": {
                "room": {"type": "string"},
                "room_title": {"type": "string"},
                "snippet": {
                    "type": "string",
                    "description": "An excerpt as HTML, escaped by the server; `<mark>` around "
                    "the matched words is its only markup.",
                },
                "permalink": {"type": "string", "pattern": "^/r/[a-z0-9-]+/m/[0-9]+$"},
            },
        },
    ],
}

_SEARCH_RESULTS = {
    "type": "object",
    "required": ["results", "has_more", "next_cursor"],
    "properties": {
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/SearchResult"}},
        "has_more": {"type": "boolean"},
        "next_cursor": {"type": ["string", "null"]},
    },
}


def _search_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_SEARCH = {
    "get": {
        "summary": "Search the messages of every room the caller may read now",
        "description": 'The query language: words (all must occur), "exact phrase", '
        "prefix*, -excluded, from:username, in:room (see docs/protocol.md, Search). Newest "
        "first; sort=relevance ranks the newest 1000 matches only. A malformed query "
        "(unbalanced quotes, a lone `*`, parentheses, over 512 bytes or 16 terms) is 400 "
        "invalid_query; a room the caller may not read is 404 like one that does not exist.",
        "operationId": "search",
        "parameters": [
            _search_parameter("q", "The query", {"type": "string", "maxLength": 512}),
            _search_parameter("room", "Only this room (as in:room)", {"type": "string"}),
            _search_parameter("from", "Only this account's messages", {"type": "string"}),
            _search_parameter(
                "before", "A message id or a date (2026-11-30): older only", {"type": "string"}
            ),
            _search_parameter("after", "A message id or a date: newer only", {"type": "string"}),
            _search_parameter(
                "limit", "Results per page", {"type": "integer", "minimum": 1, "maximum": 100}
            ),
            _search_parameter("cursor", "next_cursor of the previous page", {"type": "string"}),
            _search_parameter(
                "sort", "newest (default) or relevance", {"enum": ["newest", "relevance"]}
            ),
        ],
        "responses": {
            "200": {
                "description": "A page of results",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/SearchResults"}}
                },
            },
            "400": _error_response("A malformed query or parameter"),
            "404": _error_response("No such room (or not one the caller may read)"),
        },
    }
}


OPENAPI_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "chat",
        "version": "1",
        "description": "History and posting for the chat room. Live messages flow over the "
        "WebSocket at /chatsocket (see docs/protocol.md).",
    },
    "paths": {
        "/api/messages": {
            "get": {
                "summary": "A page of history, oldest first within the page",
                "operationId": "listMessages",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "Page size; larger values are clamped to the maximum.",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                    },
                    _cursor_parameter("before", "Only messages with a smaller id", 1),
                    _cursor_parameter("after", "Only messages with a larger id", 0),
                    _cursor_parameter(
                        "around",
                        "The page centred on this message: up to (limit - 1) // 2 older "
                        "messages, the message, and newer ones to fill the page (a permalink). "
                        "At most one of before, after and around.",
                        1,
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "A page of messages",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Page"}}
                        },
                    },
                    "400": _error_response("A bad query parameter"),
                    "404": _error_response("around names no message of this room"),
                },
            },
            "post": {
                "summary": "Post a message; it is stored, then broadcast",
                "operationId": "createMessage",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/NewMessage"}}
                    },
                },
                "responses": {
                    "201": {
                        "description": "Stored and broadcast",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Message"}}
                        },
                    },
                    "200": {
                        "description": "Already stored under this client_id; nothing new stored",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Message"}}
                        },
                    },
                    "400": _error_response("The message is invalid"),
                    "413": _error_response("The request body is too large"),
                    "415": _error_response("The body is not application/json"),
                    "429": _error_response("Too many messages; see Retry-After"),
                    "503": _error_response("The message was not stored; retry later"),
                },
            },
        },
        "/api/search": _SEARCH,
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
                    "401": _error_response("CHAT_METRICS_TOKEN is set and was not sent"),
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
            "Message": _MESSAGE,
            "Page": _PAGE,
            "NewMessage": _NEW_MESSAGE,
            "Error": _ERROR,
            "SearchResult": _SEARCH_RESULT,
            "SearchResults": _SEARCH_RESULTS,
        },
        "securitySchemes": {"metricsToken": {"type": "http", "scheme": "bearer"}},
    },
}
