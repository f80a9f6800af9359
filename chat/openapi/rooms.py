"""The rooms and conversation routes in the OpenAPI document: rooms, members, read
positions, history, one message (edit, delete, versions, reactions), DMs, presence, catch-up."""

from __future__ import annotations

from typing import Any

from chat.openapi.parts import (
    ANYONE,
    EMOJI,
    MESSAGE_ID,
    NEW_MESSAGE,
    NO_MESSAGE,
    NO_NUL,
    NO_ROOM,
    ROOM,
    ROOM_NAME,
    USERNAME,
    cursor_parameter,
    error_response,
    history,
    json_response,
    no_content,
    object_schema,
    operation,
    post_message,
    ref,
)

PUBLIC_USER = object_schema(
    ["id", "username", "display_name"],
    id={"type": "integer"},
    username={"type": "string"},
    display_name={"type": "string"},
)
USER = {
    **PUBLIC_USER,
    "required": ["id", "username", "display_name", "role"],
    "properties": {**PUBLIC_USER["properties"], "role": {"enum": ["admin", "member"]}},
}
ROOM_SCHEMA = object_schema(
    ["name", "title", "topic", "visibility", "kind", "archived", "member", "unread", "mentions"],
    name={"type": "string"},
    title={"type": "string"},
    topic={"type": "string"},
    visibility={"enum": ["public", "private"]},
    kind={"enum": ["room", "dm"]},
    archived={"type": "boolean"},
    member={"type": "boolean"},
    role={"enum": ["owner", "moderator", "member", None]},
    unread={"type": "integer", "minimum": 0},
    mentions={"type": "integer", "minimum": 0},
    last_read_id={"type": ["integer", "null"]},
    newest_id={"type": ["integer", "null"]},
    members={"type": "array", "items": ref("PublicUser")},
)
MEMBER = object_schema(
    ["user", "role", "joined_at"],
    user=ref("PublicUser"),
    role={"enum": ["owner", "moderator", "member"]},
    joined_at={"type": "string", "format": "date-time"},
)
_NEW_ROOM = object_schema(
    ["name"],
    name={"type": "string", "pattern": ROOM_NAME, "not": {"pattern": "^dm-"}},
    title={"type": ["string", "null"], "maxLength": 100, "pattern": NO_NUL},
    topic={"type": ["string", "null"], "maxLength": 500, "pattern": NO_NUL},
    visibility={"enum": ["public", "private"]},
)
_ROOM_CHANGE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "title": {"type": ["string", "null"], "maxLength": 100, "pattern": NO_NUL},
        "topic": {"type": ["string", "null"], "maxLength": 500, "pattern": NO_NUL},
        "archived": {"type": "boolean"},
    },
}
PRESENCE = object_schema(
    ["users"],
    room={"type": "string"},
    users={"type": "object", "additionalProperties": {"enum": ["online", "away"]}},
    capped={"type": "boolean"},
)
EVENTS = object_schema(
    ["reload", "cursor", "events", "has_more"],
    reload={"type": "boolean"},
    cursor={"type": "integer", "minimum": 0},
    has_more={"type": "boolean"},
    events={
        "type": "array",
        "items": {"type": "object", "required": ["type"], "description": "As the socket sends"},
    },
)
_ROOM_ANSWER = json_response(
    "The room, as the caller sees it", object_schema(["room"], room=ref("Room"))
)
_ONE_MESSAGE = json_response("The message", object_schema(["message"], message=ref("Message")))

# Room names, comma-separated, or none (the server also skips spaces and empty names).
_ONE_ROOM = ROOM_NAME.strip("^$")
_ROOM_LIST = f"^(?:{_ONE_ROOM}(?:,{_ONE_ROOM})*)?$"

ROOM_PATHS: dict[str, Any] = {
    "/api/rooms": {
        "get": operation(
            "listRooms",
            "Every room the caller may see, with unread and mention counts",
            {
                "200": json_response(
                    "The rooms",
                    object_schema(["rooms"], rooms={"type": "array", "items": ref("Room")}),
                )
            },
            security=ANYONE,
        ),
        "post": operation(
            "createRoom",
            "Create a room; the caller owns it",
            {
                "201": json_response("Created", object_schema(["room"], room=ref("Room"))),
                "409": error_response("The name is taken"),
            },
            body=_NEW_ROOM,
        ),
    },
    "/api/rooms/{room}": {
        "get": operation(
            "showRoom",
            "One room",
            {"200": _ROOM_ANSWER, **NO_ROOM},
            parameters=[ROOM],
            security=ANYONE,
        ),
        "patch": operation(
            "updateRoom",
            "Change the title or topic, archive or unarchive (owners, moderators, admins)",
            {"200": _ROOM_ANSWER, **NO_ROOM},
            parameters=[ROOM],
            body=_ROOM_CHANGE,
        ),
    },
    "/api/rooms/{room}/members": {
        "get": operation(
            "listMembers",
            "The room's members",
            {
                "200": json_response(
                    "The members",
                    object_schema(["members"], members={"type": "array", "items": ref("Member")}),
                ),
                **NO_ROOM,
            },
            parameters=[ROOM],
            security=ANYONE,
        ),
    },
    "/api/rooms/{room}/members/{username}": {
        "put": operation(
            "addMember",
            "Join a public room yourself, or (owners and moderators) add someone",
            {
                "200": json_response(
                    "The membership", object_schema(["member"], member=ref("Member"))
                ),
                "404": error_response("No such room, or no such user"),
            },
            parameters=[ROOM, USERNAME],
        ),
        "delete": operation(
            "removeMember",
            "Leave, or (owners and moderators) remove someone",
            {
                **no_content("Removed"),
                "404": error_response("No such room, no such user, or not a member"),
            },
            parameters=[ROOM, USERNAME],
        ),
    },
    "/api/rooms/{room}/read": {
        "post": operation(
            "markRead",
            "Move the caller's read position forward",
            {
                "200": json_response(
                    "The unread count left",
                    object_schema(
                        ["room", "unread"], room={"type": "string"}, unread={"type": "integer"}
                    ),
                ),
                **NO_ROOM,
            },
            parameters=[ROOM],
            body=object_schema(["up_to"], up_to={"type": "integer", "minimum": 0}),
        ),
    },
    "/api/rooms/{room}/messages": {
        "get": history("listRoomMessages", "A page of a room's history", in_room=True),
        "post": post_message("createRoomMessage", "Post a message in a room", in_room=True),
    },
    "/api/rooms/{room}/messages/{message_id}": {
        "get": operation(
            "showMessage",
            "One message, in its current state",
            {"200": _ONE_MESSAGE, **NO_MESSAGE},
            parameters=[ROOM, MESSAGE_ID],
            security=ANYONE,
        ),
        "patch": operation(
            "editMessage",
            "Edit your own message (within CHAT_EDIT_WINDOW_SECONDS)",
            {
                "200": _ONE_MESSAGE,
                **NO_MESSAGE,
                "409": error_response("The message was deleted"),
            },
            parameters=[ROOM, MESSAGE_ID],
            body=object_schema(["body"], body=NEW_MESSAGE["properties"]["body"]),
        ),
        "delete": operation(
            "deleteMessage",
            "Delete a message (its author, the room's owners and moderators, admins)",
            {**no_content("Deleted: a tombstone stays"), **NO_MESSAGE},
            parameters=[ROOM, MESSAGE_ID],
        ),
    },
    "/api/rooms/{room}/messages/{message_id}/history": {
        "get": operation(
            "messageHistory",
            "A message's earlier versions (owners, moderators, admins)",
            {
                "200": json_response(
                    "The message and its earlier versions, oldest first",
                    object_schema(
                        ["message", "versions"],
                        message=ref("Message"),
                        versions={
                            "type": "array",
                            "items": object_schema(
                                ["body", "written_at", "replaced_at"],
                                body={"type": "string"},
                                written_at={"type": "string", "format": "date-time"},
                                replaced_at={"type": "string", "format": "date-time"},
                            ),
                        },
                    ),
                ),
                **NO_MESSAGE,
            },
            parameters=[ROOM, MESSAGE_ID],
        ),
    },
    "/api/rooms/{room}/messages/{message_id}/reactions/{emoji}": {
        "put": operation(
            "addReaction",
            "React with one emoji (once per person and emoji)",
            {
                **no_content("Reacted"),
                **NO_MESSAGE,
                "400": error_response("Not one emoji"),
                "409": error_response("The message was deleted, or has too many emoji"),
            },
            parameters=[ROOM, MESSAGE_ID, EMOJI],
        ),
        "delete": operation(
            "removeReaction",
            "Take a reaction back",
            {
                **no_content("Not reacted (any more)"),
                **NO_MESSAGE,
                "400": error_response("Not one emoji"),
                "409": error_response("The message was deleted"),
            },
            parameters=[ROOM, MESSAGE_ID, EMOJI],
        ),
    },
    "/api/rooms/{room}/presence": {
        "get": operation(
            "roomPresence",
            "Who of the room's members is online or away",
            {"200": json_response("Presence", ref("Presence")), **NO_ROOM},
            parameters=[ROOM],
            security=ANYONE,
        ),
    },
    "/api/presence": {
        "get": operation(
            "presence",
            "Everyone online or away (admins)",
            {"200": json_response("Presence", ref("Presence"))},
        ),
    },
    "/api/dms": {
        "post": operation(
            "startDirectMessage",
            "The direct-message room of the caller and these people: found again, or started",
            {
                "200": json_response("The DM", object_schema(["room"], room=ref("Room"))),
                "404": error_response("No such user"),
            },
            body=object_schema(
                ["usernames"],
                usernames={
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 8,
                    "items": {"type": "string"},
                },
            ),
        ),
    },
    "/api/events": {
        "get": operation(
            "catchUp",
            "Every change since `after` in the caller's rooms (and the public rooms named)",
            {
                "200": json_response(
                    "Changes in log order, or reload: true when `after` is too old", ref("Events")
                ),
                "400": error_response("A bad query parameter"),
            },
            parameters=[
                {
                    **cursor_parameter("after", "The last seq the client applied", 0),
                    "required": True,
                },
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": "At most this many changes (0 counts as 1; at most 1000)",
                    "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                },
                {
                    "name": "rooms",
                    "in": "query",
                    "required": False,
                    "description": "Public rooms to follow as well, comma-separated",
                    "schema": {"type": "string", "pattern": _ROOM_LIST},
                },
            ],
            security=ANYONE,
        ),
    },
}
