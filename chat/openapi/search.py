"""The search route (chat.search) in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from chat.openapi.parts import ANYONE, error_response

SEARCH_RESULT = {
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

SEARCH_RESULTS = {
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


SEARCH_PATHS = {
    "/api/search": {
        "get": {
            "summary": "Search the messages of every room the caller may read now",
            "description": 'The query language: words (all must occur), "exact phrase", '
            "prefix*, -excluded, from:username, in:room (see docs/protocol.md, Search). Newest "
            "first; sort=relevance ranks the newest 1000 matches only. A malformed query "
            "(unbalanced quotes, a lone `*`, parentheses, over 512 bytes or 16 terms) is 400 "
            "invalid_query; a room the caller may not read is 404 like one that does not exist.",
            "operationId": "search",
            "security": ANYONE,
            "parameters": [
                _search_parameter("q", "The query", {"type": "string", "maxLength": 512}),
                _search_parameter("room", "Only this room (as in:room)", {"type": "string"}),
                _search_parameter("from", "Only this account's messages", {"type": "string"}),
                _search_parameter(
                    "before", "A message id or a date (2026-11-30): older only", {"type": "string"}
                ),
                _search_parameter(
                    "after", "A message id or a date: newer only", {"type": "string"}
                ),
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
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/SearchResults"}
                        }
                    },
                },
                "400": error_response("A malformed query or parameter"),
                "404": error_response("No such room (or not one the caller may read)"),
            },
        }
    }
}
