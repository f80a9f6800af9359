"""Plain-text tables and times for the admin commands' listings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart; the header underlined."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    rule = ["-" * width for width in widths]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, rule, *rows)
    )


def format_time(moment: datetime) -> str:
    """A stored time, to the minute, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
