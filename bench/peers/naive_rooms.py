"""The naive Starlette broadcast (``naive_starlette``) with a dict of rooms, for ``rooms``.

``{"type": "subscribe", "room": name}`` puts the socket in that room (answered by
``{"type": "subscribed", "room": name}``, as chat answers it); ``{"body", "room"}`` goes to that
room's sockets with ``await ws.send_text`` to each in turn; a frame without ``room`` goes to
``general``. No persistence, no per-connection queue, uvicorn's defaults (deflate on). The
frames are Tornado's ``{"id", "body", "html"}`` plus ``room``.
"""

from __future__ import annotations

import html
import json
import uuid

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench.peers._common import parse_args

rooms: dict[str, set[WebSocket]] = {}


def render(chat: dict[str, str]) -> str:
    return f'<div class="message" id="m{chat["id"]}">{html.escape(chat["body"])}</div>'


async def chatsocket(websocket: WebSocket) -> None:
    await websocket.accept()
    joined: set[str] = set()
    try:
        while True:
            parsed = json.loads(await websocket.receive_text())
            room = str(parsed.get("room") or "general")
            if parsed.get("type") == "subscribe":
                rooms.setdefault(room, set()).add(websocket)
                joined.add(room)
                await websocket.send_text(json.dumps({"type": "subscribed", "room": room}))
                continue
            chat = {"id": str(uuid.uuid4()), "body": parsed["body"], "room": room}
            chat["html"] = render(chat)
            text = json.dumps(chat)
            for client in list(rooms.get(room, ())):
                await client.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        for room in joined:
            members = rooms.get(room)
            if members is not None:
                members.discard(websocket)
                if not members:
                    del rooms[room]


app = Starlette(routes=[WebSocketRoute("/chatsocket", chatsocket)])


def main() -> None:
    args = parse_args(__doc__ or "")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
