"""The account routes in the OpenAPI document: sign-in, who am I, API tokens, invites,
users."""

from __future__ import annotations

from typing import Any

from chat.openapi.parts import (
    ANYONE,
    NO_NUL,
    USERNAME,
    error_response,
    json_response,
    no_content,
    object_schema,
    operation,
    ref,
)

_SIGNED_IN_ANSWER = json_response(
    "Signed in; the session cookie is set", object_schema(["user"], user=ref("User"))
)
_CREDENTIALS = object_schema(
    ["username", "password"],
    username={"type": "string", "minLength": 1, "maxLength": 32},
    password={"type": "string", "minLength": 1, "maxLength": 256},
)
# A new account's: what the schema can say of the rules (chat.auth.names, chat.auth.passwords);
# reserved names and the most common passwords it cannot.
_NEW_ACCOUNT = object_schema(
    ["username", "password"],
    username={"type": "string", "pattern": "^[a-z0-9_.-]{1,32}$"},
    password={"type": "string", "minLength": 8, "maxLength": 256, "pattern": NO_NUL},
    display_name={"type": ["string", "null"], "maxLength": 64},
    invite={"type": ["string", "null"]},
)
_TOKEN = object_schema(
    ["id", "name", "hint", "created_at"],
    id={"type": "integer"},
    name={"type": "string"},
    hint={"type": "string"},
    created_at={"type": "string", "format": "date-time"},
    last_used_at={"type": ["string", "null"], "format": "date-time"},
)
_INVITE = object_schema(
    ["id", "hint", "max_uses", "uses", "created_at", "expires_at", "revoked"],
    id={"type": "integer"},
    hint={"type": "string"},
    max_uses={"type": "integer"},
    uses={"type": "integer"},
    created_at={"type": "string", "format": "date-time"},
    expires_at={"type": "string", "format": "date-time"},
    revoked={"type": "boolean"},
)
_ID = {"type": "string", "pattern": "^[0-9]{1,18}$"}
_THROTTLED = {"429": error_response("Too many attempts; see Retry-After")}

ACCOUNT_PATHS: dict[str, Any] = {
    "/api/auth/register": {
        "post": operation(
            "register",
            "Make an account (per CHAT_REGISTRATION) and sign in",
            {
                "201": {**_SIGNED_IN_ANSWER, "description": "Registered and signed in"},
                "409": error_response("The name is taken"),
                **_THROTTLED,
            },
            body=_NEW_ACCOUNT,
            security=[{}],
        ),
    },
    "/api/auth/login": {
        "post": operation(
            "login",
            "Sign in",
            {"200": _SIGNED_IN_ANSWER, **_THROTTLED},
            body=_CREDENTIALS,
            security=[{}],
        ),
    },
    "/api/auth/logout": {
        "post": operation(
            "logout", "Sign out this session", no_content("Signed out"), security=ANYONE
        ),
    },
    "/api/auth/logout-everywhere": {
        "post": operation(
            "logoutEverywhere", "End every session of the caller", no_content("Signed out")
        ),
    },
    "/api/me": {
        "get": operation(
            "me",
            "Who the caller is",
            {
                "200": json_response(
                    "The caller",
                    object_schema(
                        ["user", "signed_in_with"],
                        user=ref("User"),
                        signed_in_with={"enum": ["session", "token", "proxy"]},
                    ),
                )
            },
        ),
    },
    "/api/tokens": {
        "get": operation(
            "listTokens",
            "The caller's personal API tokens (never the tokens themselves)",
            {
                "200": json_response(
                    "Tokens", object_schema(["tokens"], tokens={"type": "array", "items": _TOKEN})
                )
            },
        ),
        "post": operation(
            "createToken",
            "A new personal API token, shown this once",
            {
                "201": json_response(
                    "The token",
                    {
                        **_TOKEN,
                        "required": [*_TOKEN["required"], "token"],
                        "properties": {**_TOKEN["properties"], "token": {"type": "string"}},
                    },
                )
            },
            body=object_schema(["name"], name={"type": "string", "minLength": 1, "maxLength": 64}),
        ),
    },
    "/api/tokens/{token_id}": {
        "delete": operation(
            "revokeToken",
            "Revoke one of the caller's tokens",
            {**no_content("Revoked"), "404": error_response("No such token of the caller's")},
            parameters=[{"name": "token_id", "in": "path", "required": True, "schema": _ID}],
        ),
    },
    "/api/invites": {
        "get": operation(
            "listInvites",
            "Invites (admins)",
            {
                "200": json_response(
                    "Invites",
                    object_schema(["invites"], invites={"type": "array", "items": _INVITE}),
                )
            },
        ),
        "post": operation(
            "createInvite",
            "A new invite code, shown this once (admins)",
            {
                "201": json_response(
                    "The invite", object_schema(["invite"], invite={"type": "object"})
                )
            },
            body=object_schema(
                [],
                max_uses={"type": "integer", "minimum": 1, "maximum": 1000},
                expires_in_hours={"type": "integer", "minimum": 1, "maximum": 8760},
            ),
        ),
    },
    "/api/invites/{invite_id}": {
        "delete": operation(
            "revokeInvite",
            "Revoke an invite (admins)",
            {**no_content("Revoked"), "404": error_response("No such live invite")},
            parameters=[{"name": "invite_id", "in": "path", "required": True, "schema": _ID}],
        ),
    },
    "/api/users": {
        "get": operation(
            "listUsers",
            "Who has an account (admins see more)",
            {
                "200": json_response(
                    "Users", object_schema(["users"], users={"type": "array", "items": ref("User")})
                )
            },
        ),
    },
    "/api/users/{username}": {
        "patch": operation(
            "updateUser",
            "Disable or enable an account, make or unmake an admin (admins)",
            {
                "200": json_response("The user", object_schema(["user"], user=ref("User"))),
                "404": error_response("No such user"),
            },
            parameters=[USERNAME],
            body={
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "disabled": {"type": "boolean"},
                    "role": {"enum": ["admin", "member"]},
                },
            },
        ),
    },
    "/api/openapi.json": {
        "get": {
            "summary": "This document",
            "operationId": "openapi",
            "responses": {"200": json_response("The OpenAPI document", {"type": "object"})},
        },
    },
}
