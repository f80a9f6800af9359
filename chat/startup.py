"""One clear line, not a traceback, when the server refuses to start for a known reason.

Starlette reports a failed lifespan with the whole traceback, which uvicorn logs. A refusal the
operator can fix (a schema that is not at head) deserves the sentence that says how instead:
this pure ASGI middleware replaces the failure message for the exception types it is given.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class StartupRefusalMiddleware:
    def __init__(self, app: ASGIApp, *, refusals: tuple[type[Exception], ...]) -> None:
        self.app = app
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_startup_failure(message: Message) -> None:
            # Starlette sends the failure, then re-raises: hold it until the exception says
            # whether it is one of ours.
            if message["type"] == "lifespan.startup.failed":
                held.append(message)
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_startup_failure)
        except self.refusals as refusal:
            # uvicorn logs this line, then "Application startup failed. Exiting." and exits 3.
            await send({"type": "lifespan.startup.failed", "message": f"chat: {refusal}"})
            return
        except BaseException:
            await _send_all(send, held)
            raise
        await _send_all(send, held)


async def _send_all(send: Send, messages: list[Message]) -> None:
    for message in messages:
        await send(message)
