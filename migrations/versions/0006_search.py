"""Full-text search over message bodies (chat.search.schema has the DDL and the reasons).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

SQLite: an FTS5 external-content table kept in step by triggers; PostgreSQL: a GIN index on
to_tsvector('simple', body). Both back-filled from every stored message that is not deleted.
With CHAT_SEARCH_TRIGRAM=true when this runs, a trigram index instead (Chinese, Japanese).
The downgrade removes the index; no message changes either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from chat.search import schema

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    trigram = schema.trigram_requested()
    if op.get_bind().dialect.name == "sqlite":
        statements = schema.sqlite_create(trigram=trigram)
    else:
        statements = schema.postgres_create(trigram=trigram)
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        statements = schema.sqlite_drop()
    else:
        statements = schema.postgres_drop()
    for statement in statements:
        op.execute(statement)
