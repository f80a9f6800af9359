"""Single sign-on: oidc_logins, the sign-ons waiting for the provider to send the browser back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

A new table only; nothing else changes. Its rows live ten minutes, so the downgrade loses
nothing but sign-ons in flight.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from chat.models import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "oidc_logins",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("redirect_uri", sa.String(2048), nullable=False),
        sa.Column("next_path", sa.String(2048), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_logins")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oidc_logins_state_hash")),
    )
    op.create_index(op.f("ix_oidc_logins_created_at"), "oidc_logins", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_oidc_logins_created_at"), table_name="oidc_logins")
    op.drop_table("oidc_logins")
