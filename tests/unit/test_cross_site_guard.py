"""CrossSiteRequestGuard on its own: which cookie-carrying state changes it lets through."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from chat.auth.csrf import CrossSiteRequestGuard

pytestmark = pytest.mark.anyio

SELF = "http://testserver"


async def changed(request: Request) -> PlainTextResponse:
    return PlainTextResponse("changed")


async def post(headers: dict[str, str], *, cookies: bool = True) -> int:
    app = CrossSiteRequestGuard(Starlette(routes=[Route("/change", changed, methods=["POST"])]))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=SELF,
        cookies={"session": "x"} if cookies else None,
    ) as client:
        return (await client.post("/change", headers=headers)).status_code


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        # Chromium's same-origin form post under Referrer-Policy: no-referrer.
        ({"Sec-Fetch-Site": "same-origin", "Origin": "null"}, True),
        ({"Sec-Fetch-Site": "same-origin", "Origin": SELF}, True),
        ({"Sec-Fetch-Site": "none"}, True),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "null"}, False),
        ({"Sec-Fetch-Site": "cross-site", "Origin": SELF}, False),
        ({"Sec-Fetch-Site": "same-site", "Origin": "http://other.testserver"}, False),
        # Browsers without Sec-Fetch-Site: the Origin decides.
        ({"Origin": SELF}, True),
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({}, True),  # no Origin at all: not a browser's cross-site request
    ],
)
async def test_cookie_carrying_posts(headers: dict[str, str], allowed: bool) -> None:
    assert await post(headers) == (200 if allowed else 403)


async def test_posts_without_cookies_are_not_its_business() -> None:
    assert await post({"Sec-Fetch-Site": "cross-site"}, cookies=False) == 200
