"""Logging set-up: human-readable lines by default, one JSON object per line for collectors.

Context travels as `extra=` fields (`client`, `user`, `room`, `code`, ...) and becomes keys of
the JSON object (or a `key=value` suffix in text). Every line passes a redaction filter first:
credentials never reach a log, whichever code path formats them (uvicorn's access log included).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with ANSI colours
}

# What a credential looks like wherever it might be quoted: a URL's password, an Authorization
# header, a key=value pair naming a secret, and this server's own token format.
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@"), r"\1***@"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 ***"),
    (
        re.compile(
            r"(?i)\b(password|passwd|secret|token|session|api[_-]?key|code_verifier|code)"
            r"(\"?\s*[=:]\s*\"?)[^\s&\",;]+"
        ),
        r"\1\2***",
    ),
    (re.compile(r"\bchat_[A-Za-z0-9_-]{16,}"), "chat_***"),
)


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Formats the message once, scrubs credentials from it and from `extra=` string fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = redact(message)
        if scrubbed != message or record.args:
            record.msg, record.args = scrubbed, None
        for key, value in _extra_fields(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(_extra_fields(record))
        if record.exc_info:
            payload["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with any extra fields appended as key=value."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = _extra_fields(record)
        if not extra:
            return line
        first, newline, rest = line.partition("\n")
        fields = " ".join(f"{key}={value}" for key, value in extra.items())
        return f"{first} [{fields}]{newline}{redact(rest) if rest else ''}"


def configure_logging(*, level: str, log_format: str) -> None:
    """Send every logger's records (uvicorn's too) to stderr in the chosen format."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Alembic narrates every schema check ("Context impl SQLiteImpl."); chat.migrate logs what
    # changed instead.
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")
    }
