"""The broadcast a user writes from the Starlette docs: a set of sockets, ``send_text`` to each.

No persistence, no per-connection queue: one slow client stalls every sender. Served by uvicorn
with its defaults (``ws="auto"``, permessage-deflate on). The frames are Tornado's
``{"id", "body", "html"}`` so the load generator reads every server the same way.
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

clients: set[WebSocket] = set()


def render(chat: dict[str, str]) -> str:
    return f'<div class="message" id="m{chat["id"]}">{html.escape(chat["body"])}</div>'


async def chatsocket(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    try:
        while True:
            parsed = json.loads(await websocket.receive_text())
            chat = {"id": str(uuid.uuid4()), "body": parsed["body"]}
            chat["html"] = render(chat)
            text = json.dumps(chat)
            for client in list(clients):
                await client.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)


app = Starlette(routes=[WebSocketRoute("/chatsocket", chatsocket)])


def main() -> None:
    args = parse_args(__doc__ or "")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
