"""A bare ``websockets`` server (new asyncio API) that relays with ``websockets.broadcast``.

No persistence, no rendering beyond an escaped fragment, compression at the library's default
(deflate): roughly the most a single Python process can relay, so a ceiling for the others.
"""

from __future__ import annotations

import asyncio
import html
import json
import uuid

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.peers._common import parse_args

CLIENTS: set[ServerConnection] = set()


def render(chat: dict[str, str]) -> str:
    return f'<div class="message" id="m{chat["id"]}">{html.escape(chat["body"])}</div>'


async def handler(websocket: ServerConnection) -> None:
    CLIENTS.add(websocket)
    try:
        async for message in websocket:
            parsed = json.loads(message)
            chat = {"id": str(uuid.uuid4()), "body": parsed["body"]}
            chat["html"] = render(chat)
            broadcast(CLIENTS, json.dumps(chat))
    finally:
        CLIENTS.discard(websocket)


async def main() -> None:
    args = parse_args(__doc__ or "")
    async with serve(handler, args.host, args.port) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
