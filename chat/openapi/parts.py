"""Building blocks of the OpenAPI document: the shared schemas, parameters and answers,
and one way to write an operation."""

from __future__ import annotations

from typing import Any

NO_NUL = "^[^\\u0000]*$"
# "Space" as Python's str.strip() means it, which is ECMA's \s plus U+001C-U+001F and U+0085.
NO_NUL_SOME_TEXT = "^[^\\u0000]*[^\\s\\u0000\\u001c-\\u001f\\u0085][^\\u0000]*$"

ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}

MESSAGE = {
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
        "room": {"type": "string"},
        "user": {"oneOf": [{"$ref": "#/components/schemas/PublicUser"}, {"type": "null"}]},
        "reply_to": {"type": ["object", "null"]},
        "edited_at": {"type": ["string", "null"], "format": "date-time"},
        "deleted": {"type": "boolean"},
        "deleted_by": {"oneOf": [{"$ref": "#/components/schemas/PublicUser"}, {"type": "null"}]},
        "reactions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["emoji", "count", "users"],
                "properties": {
                    "emoji": {"type": "string"},
                    "count": {"type": "integer", "minimum": 1},
                    "users": {"type": "array", "items": {"type": "integer"}},
                },
            },
        },
        "version": {"type": "integer", "minimum": 0},
    },
}

PAGE = {
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

NEW_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["body"],
    "properties": {
        "body": {
            "type": "string",
            "minLength": 1,
            "maxLength": 2000,
            "pattern": NO_NUL_SOME_TEXT,
            "description": "At least one non-space character, no NUL; the length limit is "
            "CHAT_MAX_MESSAGE_CHARS (2000 by default).",
        },
        "author": {"type": ["string", "null"], "maxLength": 64, "pattern": NO_NUL},
        "client_id": {
            "type": ["string", "null"],
            "minLength": 1,
            "maxLength": 64,
            "pattern": NO_NUL,
        },
    },
}


def error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def cursor_parameter(name: str, description: str, minimum: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": 2**63 - 1},
    }


# ---- building blocks ----

SIGNED_IN: list[dict[str, list[str]]] = [{"session": []}, {"token": []}]
ANYONE = [*SIGNED_IN, {}]  # guests too, as CHAT_GUEST_ACCESS allows
ROOM_NAME = "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
ROOM = {
    "name": "room",
    "in": "path",
    "required": True,
    "description": "The room's name. A private room or DM the caller is not in answers 404 "
    "exactly as a room that never existed.",
    "schema": {"type": "string", "pattern": ROOM_NAME, "maxLength": 64},
}
MESSAGE_ID = {
    "name": "message_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
}
EMOJI = {
    "name": "emoji",
    "in": "path",
    "required": True,
    "description": "One emoji, such as 👍 (URL-encoded).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 16},
}
USERNAME = {
    "name": "username",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 32},
}
# What any route may answer before it runs: a bad bearer token (401), a cross-site request
# carrying cookies (403).
ALWAYS = {
    "401": error_response("Not signed in, or an API token unknown, revoked or disabled"),
    "403": error_response("Not allowed, or a cross-site request"),
}
BODY_ERRORS = {
    "400": error_response("The body or a field is invalid"),
    "413": error_response("The request body is too large"),
    "415": error_response("The body is not application/json"),
}
NO_ROOM = {"404": error_response("No such room (or none the caller may see)")}
NO_MESSAGE = {"404": error_response("No such room, or no such message in it")}
NO_AROUND = {"404": error_response("around names no message of this room")}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def object_schema(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    security: list[dict[str, list[str]]] = SIGNED_IN,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": operation_id,
        "security": security,
        "responses": {**ALWAYS, **(BODY_ERRORS if body is not None else {}), **responses},
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return operation


def no_content(description: str) -> dict[str, Any]:
    return {"204": {"description": description}}


HISTORY_PARAMETERS = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Page size; larger values are clamped to the maximum.",
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    },
    cursor_parameter("before", "Only messages with a smaller id", 1),
    cursor_parameter("after", "Only messages with a larger id", 0),
    cursor_parameter(
        "around",
        "The page centred on this message: up to (limit - 1) // 2 older messages, the message, "
        "and newer ones to fill the page (a permalink). At most one of before, after and around.",
        1,
    ),
]


def history(operation_id: str, summary: str, *, in_room: bool = False) -> dict[str, Any]:
    return operation(
        operation_id,
        f"{summary}, oldest first within the page",
        {
            "200": json_response("A page of messages", ref("Page")),
            "400": error_response("A bad query parameter"),
            **(NO_MESSAGE if in_room else NO_AROUND),
        },
        parameters=[*([ROOM] if in_room else []), *HISTORY_PARAMETERS],
        security=ANYONE,
    )


def post_message(operation_id: str, summary: str, *, in_room: bool = False) -> dict[str, Any]:
    return operation(
        operation_id,
        f"{summary}; it is stored, then broadcast",
        {
            "201": json_response("Stored and broadcast", ref("Message")),
            "200": json_response(
                "Already stored under this client_id; nothing new stored", ref("Message")
            ),
            "429": error_response("Too many messages; see Retry-After"),
            "503": error_response("The message was not stored; retry later"),
            **(NO_ROOM if in_room else {}),
        },
        parameters=[ROOM] if in_room else None,
        body=ref("NewMessage"),
        security=ANYONE,
    )
