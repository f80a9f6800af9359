"""Log lines: JSON for collectors, text for people, and never a credential in either."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from chat.logs import JsonFormatter, RedactingFilter, TextFormatter, redact


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("chat.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream, handler
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("connecting to postgresql://chat:s3cr3t-pw@db:5432/chat", "s3cr3t-pw"),
        ("redis://:hunter2hunter2@cache:6379/0 unreachable", "hunter2hunter2"),
        ("header Authorization: Bearer chat_AbCdEf0123456789xyz", "chat_AbCdEf0123456789xyz"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("login failed: password=correct-horse-battery", "correct-horse-battery"),
        ('payload {"password": "Tr0ub4dor&3"}', "Tr0ub4dor&3"),
        ("GET /oidc/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=abc", "SplxlOBeZQQYbYS6WxSbIA"),
        ("cookie session=9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
        ("token chat_0123456789abcdefghijklmnop leaked", "chat_0123456789abcdefghijklmnop"),
    ],
)
def test_credentials_are_redacted(line: str, secret: str) -> None:
    scrubbed = redact(line)
    assert secret not in scrubbed
    assert "***" in scrubbed


def test_ordinary_lines_are_left_alone() -> None:
    line = "client error from 127.0.0.1 on /api/messages: body_too_long (2001 characters)"
    assert redact(line) == line


def test_json_lines_carry_the_fields_and_no_secret(
    captured: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    logger.warning(
        "refused %s with password=%s",
        "ada",
        "hunter2-hunter2",
        extra={"client": "10.0.0.7", "code": "bad_credentials", "user": "ada"},
    )
    record = json.loads(stream.getvalue())
    assert record["level"] == "warning"
    assert record["logger"] == "chat.test_logs"
    assert record["message"] == "refused ada with password=***"
    assert record["client"] == "10.0.0.7"
    assert record["code"] == "bad_credentials"
    assert record["user"] == "ada"
    assert record["time"].endswith("+00:00")


def test_json_lines_put_an_exception_in_one_line(
    captured: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    try:
        raise ValueError("postgresql://u:pw-in-url@h/db")
    except ValueError:
        logger.exception("failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert "ValueError" in record["exception"]
    assert "pw-in-url" not in record["exception"]


def test_text_lines_append_the_fields(
    captured: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = captured
    handler.setFormatter(TextFormatter())
    logger.info("closing slow consumer", extra={"client": "127.0.0.1:5000"})
    line = stream.getvalue().strip()
    assert line.endswith("chat.test_logs: closing slow consumer [client=127.0.0.1:5000]")
