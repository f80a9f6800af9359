"""Origin checks for WebSockets, CSRF tokens for forms, bearer tokens for scrapes, and safe
redirect targets."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_HTTP_SCHEME_FOR = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def normalize_origin(origin: str) -> str | None:
    """`scheme://host:port` in lower case with the default port made explicit, or None."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}"


def origin_allowed(
    origin: str | None,
    *,
    host: str | None,
    scheme: str,
    allowed: frozenset[str],
    allow_missing: bool = True,
) -> bool:
    """Whether a WebSocket handshake's Origin may connect.

    Like Tornado, the origin must be this server as the browser addressed it (the Host header),
    but compared whole: scheme, host and port. `allowed` adds other exact origins.
    """
    if origin is None:
        return allow_missing
    candidate = normalize_origin(origin)
    if candidate is None:
        return False
    if host:
        http_scheme = _HTTP_SCHEME_FOR.get(scheme, scheme)
        own = normalize_origin(f"{http_scheme}://{host}")
        if own is not None and hmac.compare_digest(candidate, own):
            return True
    return any(candidate == normalize_origin(entry) for entry in allowed)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_token_matches(cookie: str | None, submitted: str | None) -> bool:
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


def bearer_token_matches(authorization: str | None, expected: str) -> bool:
    """Whether an Authorization header is `Bearer <expected>` (the scheme in any case), the
    token compared in constant time."""
    if not authorization:
        return False
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), expected.encode())


def safe_next_path(candidate: str | None, default: str = "/") -> str:
    """Only local absolute paths: no scheme, no host, no protocol-relative `//` tricks."""
    if not candidate or not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return default
    if any(ord(ch) < 0x20 or ch == "\\" for ch in candidate):
        return default
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return default
    return candidate
