"""The OpenAPI 3.1 description of the JSON API, served at /api/openapi.json.

`parts` holds the building blocks; `rooms` and `accounts` the routes of each area;
`document` puts them together."""

from __future__ import annotations

from chat.openapi.document import OPENAPI_DOCUMENT

__all__ = ["OPENAPI_DOCUMENT"]
