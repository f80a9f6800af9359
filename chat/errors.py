"""The one client error type and its one JSON shape: `{"error": <code>, "detail": <text>}`."""

from __future__ import annotations

import math
from typing import Any


class ClientError(ValueError):
    """A client mistake with a stable machine-readable code and a human-readable detail.

    `status` is the HTTP status an API answers it with; a socket sends it as an error frame.
    """

    def __init__(
        self, code: str, detail: str, *, status: int = 400, client_id: str | None = None
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status
        self.client_id = client_id

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail}


class TryLater(ClientError):
    """Refused for now (429, or 503 when the server rather than the client is the reason): it
    may succeed in `retry_after` seconds (the Retry-After header)."""

    def __init__(self, code: str, detail: str, *, retry_after: float, status: int = 429) -> None:
        super().__init__(code, detail, status=status)
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "retry_after": self.retry_after}
