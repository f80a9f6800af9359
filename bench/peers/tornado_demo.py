"""Tornado's websocket chat demo (demos/websocket/chatdemo.py), reduced to what the socket does.

Kept on purpose, because that is what is being measured: the class-level ``waiters`` set, uuid
ids, a 200-message cache, ``write_message`` to each waiter in turn, deflate on through
``get_compression_options`` returning ``{}``, and the ``message.html`` fragment rendered through
``render_string`` with the ``linkify`` UI module. Left out: the page and its static files.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, ClassVar

import tornado.escape
import tornado.template
import tornado.web
import tornado.websocket

from bench.peers._common import parse_args

MESSAGE_TEMPLATE = '<div class="message" id="m{{ message["id"] }}">'
MESSAGE_TEMPLATE += '{% module linkify(message["body"]) %}</div>\n'


class ChatSocketHandler(tornado.websocket.WebSocketHandler):
    waiters: ClassVar[set[ChatSocketHandler]] = set()
    cache: ClassVar[list[dict[str, Any]]] = []
    cache_size = 200

    def get_compression_options(self) -> dict[str, Any]:
        # Non-None enables compression with default options.
        return {}

    def open(self, *args: str, **kwargs: str) -> None:
        ChatSocketHandler.waiters.add(self)

    def on_close(self) -> None:
        ChatSocketHandler.waiters.remove(self)

    @classmethod
    def update_cache(cls, chat: dict[str, Any]) -> None:
        cls.cache.append(chat)
        if len(cls.cache) > cls.cache_size:
            cls.cache = cls.cache[-cls.cache_size :]

    @classmethod
    def send_updates(cls, chat: dict[str, Any]) -> None:
        logging.info("sending message to %d waiters", len(cls.waiters))
        for waiter in cls.waiters:
            try:
                waiter.write_message(chat)
            except Exception:
                logging.error("Error sending message", exc_info=True)

    def on_message(self, message: str | bytes) -> None:
        logging.info("got message %r", message)
        parsed = tornado.escape.json_decode(message)
        chat = {"id": str(uuid.uuid4()), "body": parsed["body"]}
        chat["html"] = tornado.escape.to_basestring(
            self.render_string("message.html", message=chat)
        )
        ChatSocketHandler.update_cache(chat)
        ChatSocketHandler.send_updates(chat)


def make_app() -> tornado.web.Application:
    loader = tornado.template.DictLoader({"message.html": MESSAGE_TEMPLATE})
    return tornado.web.Application(
        [(r"/chatsocket", ChatSocketHandler)],
        cookie_secret=uuid.uuid4().hex,
        template_loader=loader,
    )


async def main() -> None:
    args = parse_args(__doc__ or "")
    make_app().listen(args.port, address=args.host)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
