"""Configuration, read once from the environment into a frozen object that is passed down."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./chat.db"
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LOG_FORMATS = ("text", "json")
REGISTRATION_MODES = ("open", "invite", "closed")
GUEST_ACCESS_MODES = ("post", "read", "none")
MAX_ISSUER_CHARS = 255  # external_identities.issuer
# RFC 6750's b64token: what may follow "Bearer " in an Authorization header.
BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class SettingsError(ValueError):
    """A CHAT_* variable has a value the server cannot run with."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    broadcast_url: str = "memory://"
    # Redis channel / PostgreSQL NOTIFY channel shared by the nodes of one deployment.
    broadcast_channel: str = "chat:messages"
    host: str = "127.0.0.1"
    port: int = 8080
    # Messages rendered into the page itself (the Tornado demo rendered its 200-message cache).
    page_messages: int = 100
    max_message_chars: int = 2000
    max_author_chars: int = 64
    # A frame above this many bytes gets an error frame and the connection stays open...
    max_frame_bytes: int = 16 * 1024
    # ...while one above this is refused by the WebSocket protocol itself (close 1009).
    max_protocol_frame_bytes: int = 64 * 1024
    send_queue_size: int = 256
    history_page_max: int = 200
    history_page_default: int = 50
    allowed_origins: frozenset[str] = field(default_factory=frozenset)
    sqlite_synchronous: str = "FULL"
    sqlite_busy_timeout_ms: int = 5000
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    log_level: str = "info"
    log_format: str = "text"  # or "json": one object per line, for log collectors
    # Upgrade the schema before serving (one node migrates, the others wait for it).
    migrate_on_start: bool = False
    # Abuse limits (see README "Limits and security"); a busy human never reaches them.
    require_origin: bool = False
    socket_rate_per_second: float = 2.0
    socket_rate_burst: int = 30
    rate_limit_strikes: int = 20
    post_rate_per_second: float = 2.0
    post_rate_burst: int = 30
    max_connections: int = 10_000
    max_connections_per_address: int = 100
    # Accounts (see README "Accounts and sign-in").
    session_days: int = 30
    registration: str = "open"
    guest_access: str = "post"
    # How often each node re-checks the credentials of its open sockets (the safety net behind
    # the immediate, broadcast revocation, e.g. while the broker is down).
    auth_recheck_seconds: float = 30.0
    # How long after sending a message its author may edit it (None: always; 0: never).
    edit_window_seconds: float | None = None
    # A client more changes than this behind is told to reload instead of replaying them all.
    replay_window: int = 100_000
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_name: str = "single sign-on"
    proxy_user_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    # GET /metrics (see README "Metrics"); scrapes must send this token when it is set.
    metrics: bool = False
    metrics_token: str | None = field(default=None, repr=False)
    # prometheus_client's own variable: where `uvicorn --workers N` processes keep their values.
    prometheus_multiproc_dir: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        settings = cls(
            database_url=reader.text("CHAT_DATABASE_URL", DEFAULT_DATABASE_URL),
            broadcast_url=reader.text("CHAT_BROADCAST_URL", "memory://"),
            broadcast_channel=reader.text("CHAT_BROADCAST_CHANNEL", "chat:messages"),
            host=reader.text("CHAT_HOST", "127.0.0.1"),
            port=reader.integer("CHAT_PORT", 8080, low=0, high=65535),
            page_messages=reader.integer("CHAT_PAGE_MESSAGES", 100, low=1, high=1000),
            max_message_chars=reader.integer("CHAT_MAX_MESSAGE_CHARS", 2000, low=1),
            max_author_chars=reader.integer("CHAT_MAX_AUTHOR_CHARS", 64, low=1, high=1000),
            max_frame_bytes=reader.integer("CHAT_MAX_FRAME_BYTES", 16 * 1024, low=64),
            max_protocol_frame_bytes=reader.integer(
                "CHAT_MAX_PROTOCOL_FRAME_BYTES", 64 * 1024, low=64
            ),
            send_queue_size=reader.integer("CHAT_SEND_QUEUE_SIZE", 256, low=1),
            history_page_max=reader.integer("CHAT_HISTORY_PAGE_MAX", 200, low=1, high=10_000),
            history_page_default=reader.integer("CHAT_HISTORY_PAGE_DEFAULT", 50, low=1),
            allowed_origins=reader.origins("CHAT_ALLOWED_ORIGINS"),
            sqlite_synchronous=reader.choice("CHAT_SQLITE_SYNCHRONOUS", "FULL", SYNCHRONOUS_MODES),
            sqlite_busy_timeout_ms=reader.integer("CHAT_SQLITE_BUSY_TIMEOUT_MS", 5000, low=0),
            ws_ping_interval=reader.number("CHAT_WS_PING_INTERVAL", 20.0, low=0.1),
            ws_ping_timeout=reader.number("CHAT_WS_PING_TIMEOUT", 20.0, low=0.1),
            log_level=reader.choice("CHAT_LOG_LEVEL", "info", LOG_LEVELS),
            log_format=reader.choice("CHAT_LOG_FORMAT", "text", LOG_FORMATS),
            migrate_on_start=reader.boolean("CHAT_MIGRATE_ON_START", False),
            require_origin=reader.boolean("CHAT_REQUIRE_ORIGIN", False),
            socket_rate_per_second=reader.number("CHAT_SOCKET_RATE", 2.0, low=0.001),
            socket_rate_burst=reader.integer("CHAT_SOCKET_BURST", 30, low=1),
            rate_limit_strikes=reader.integer("CHAT_RATE_LIMIT_STRIKES", 20, low=1),
            post_rate_per_second=reader.number("CHAT_POST_RATE", 2.0, low=0.001),
            post_rate_burst=reader.integer("CHAT_POST_BURST", 30, low=1),
            max_connections=reader.integer("CHAT_MAX_CONNECTIONS", 10_000, low=1),
            max_connections_per_address=reader.integer(
                "CHAT_MAX_CONNECTIONS_PER_ADDRESS", 100, low=1
            ),
            session_days=reader.integer("CHAT_SESSION_DAYS", 30, low=1, high=3650),
            registration=reader.choice("CHAT_REGISTRATION", "open", REGISTRATION_MODES),
            guest_access=reader.choice("CHAT_GUEST_ACCESS", "post", GUEST_ACCESS_MODES),
            auth_recheck_seconds=reader.number("CHAT_AUTH_RECHECK_SECONDS", 30.0, low=0.1),
            replay_window=reader.integer("CHAT_REPLAY_WINDOW", 100_000, low=1),
            edit_window_seconds=reader.optional_number("CHAT_EDIT_WINDOW_SECONDS", low=0.0),
            oidc_issuer=reader.optional("CHAT_OIDC_ISSUER"),
            oidc_client_id=reader.optional("CHAT_OIDC_CLIENT_ID"),
            oidc_client_secret=reader.optional("CHAT_OIDC_CLIENT_SECRET"),
            oidc_name=reader.text("CHAT_OIDC_NAME", "single sign-on"),
            proxy_user_header=reader.optional("CHAT_PROXY_USER_HEADER"),
            trusted_proxies=reader.networks("CHAT_TRUSTED_PROXIES"),
            metrics=reader.boolean("CHAT_METRICS", False),
            metrics_token=reader.optional("CHAT_METRICS_TOKEN"),
            prometheus_multiproc_dir=reader.optional("PROMETHEUS_MULTIPROC_DIR"),
        )
        settings.validate()
        return settings

    def with_overrides(self, **changes: Any) -> Settings:
        updated = replace(self, **changes)
        updated.validate()
        return updated

    def validate(self) -> None:
        if self.max_frame_bytes > self.max_protocol_frame_bytes:
            raise SettingsError(
                f"CHAT_MAX_FRAME_BYTES ({self.max_frame_bytes}) must not exceed "
                f"CHAT_MAX_PROTOCOL_FRAME_BYTES ({self.max_protocol_frame_bytes})"
            )
        if self.history_page_default > self.history_page_max:
            raise SettingsError(
                f"CHAT_HISTORY_PAGE_DEFAULT ({self.history_page_default}) must not exceed "
                f"CHAT_HISTORY_PAGE_MAX ({self.history_page_max})"
            )
        if self.metrics_token is not None and not BEARER_TOKEN.fullmatch(self.metrics_token):
            # The value is a secret: the message, which may reach a log, does not repeat it.
            raise SettingsError(
                f"CHAT_METRICS_TOKEN must be a bearer token ({BEARER_TOKEN.pattern}); "
                "value not shown"
            )

        oidc = (self.oidc_issuer, self.oidc_client_id, self.oidc_client_secret)
        if any(oidc) and not all(oidc):
            raise SettingsError(
                "single sign-on needs all of CHAT_OIDC_ISSUER, CHAT_OIDC_CLIENT_ID and "
                "CHAT_OIDC_CLIENT_SECRET"
            )
        issuer = self.oidc_issuer
        if issuer is not None and (
            not issuer.startswith(("https://", "http://")) or len(issuer) > MAX_ISSUER_CHARS
        ):
            raise SettingsError(
                f"CHAT_OIDC_ISSUER must be the provider's http(s) URL of at most "
                f"{MAX_ISSUER_CHARS} characters, got {issuer!r}"
            )
        if self.proxy_user_header and not self.trusted_proxies:
            raise SettingsError(
                "CHAT_PROXY_USER_HEADER needs CHAT_TRUSTED_PROXIES (the proxies' addresses)"
            )

    @property
    def oidc_enabled(self) -> bool:
        return self.oidc_issuer is not None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class _Reader:
    """Reads typed values from an environment mapping, naming the variable in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        value = self._env.get(name, "").strip()
        return value or default

    def optional_number(self, name: str, *, low: float | None = None) -> float | None:
        raw = self._env.get(name, "").strip()
        return None if not raw else self.number(name, 0.0, low=low)

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def networks(self, name: str) -> tuple[str, ...]:
        """Comma-separated IP addresses or CIDR networks, validated."""
        raw = self._env.get(name, "")
        entries = tuple(item.strip() for item in raw.split(",") if item.strip())
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise SettingsError(
                    f"{name} entries must be IP addresses or networks, got {entry!r}"
                ) from None
        return entries

    def integer(
        self, name: str, default: int, *, low: int | None = None, high: int | None = None
    ) -> int:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        self._check_range(name, value, low, high)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    def number(self, name: str, default: float, *, low: float | None = None) -> float:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        self._check_range(name, value, low, None)
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        for choice in choices:
            if raw.lower() == choice.lower():
                return choice
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")

    def origins(self, name: str) -> frozenset[str]:
        raw = self._env.get(name, "")
        origins = {item.strip().rstrip("/").lower() for item in raw.split(",") if item.strip()}
        for origin in origins:
            if "://" not in origin:
                raise SettingsError(
                    f"{name} entries must look like https://host[:port], got {origin!r}"
                )
        return frozenset(origins)

    @staticmethod
    def _check_range(name: str, value: float, low: float | None, high: float | None) -> None:
        if low is not None and value < low:
            raise SettingsError(f"{name} must be at least {low}, got {value!r}")
        if high is not None and value > high:
            raise SettingsError(f"{name} must be at most {high}, got {value!r}")
