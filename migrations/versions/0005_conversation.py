"""A living conversation: replies, edits (with the bodies they replaced), deletes, reactions
and mentions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Every existing message keeps its id, order, author, time and body; none is edited, deleted,
reacted to or mentions anyone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from chat.models import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("messages", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("reply_to", _ID, nullable=True))
        batch.add_column(sa.Column("edited_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("deleted_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("deleted_by", _ID, nullable=True))
        batch.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(
            sa.Column("mentions_room", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_foreign_key(
            op.f("fk_messages_reply_to_messages"),
            "messages",
            ["reply_to"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            op.f("fk_messages_deleted_by_users"),
            "users",
            ["deleted_by"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "message_versions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("message_id", _ID, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("written_at", UTCDateTime(), nullable=False),
        sa.Column("replaced_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_versions")),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_versions_message_id_messages"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_message_versions_message_id"), "message_versions", ["message_id"])
    op.create_table(
        "reactions",
        sa.Column("message_id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("emoji", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "user_id", "emoji", name=op.f("pk_reactions")),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_reactions_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_reactions_user_id_users"), ondelete="CASCADE"
        ),
    )
    op.create_table(
        "mentions",
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("room_id", _ID, nullable=False),
        sa.Column("message_id", _ID, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "room_id", "message_id", name=op.f("pk_mentions")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_mentions_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_mentions_room_id_rooms"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_mentions_message_id_messages"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("mentions")
    op.drop_table("reactions")
    op.drop_index(op.f("ix_message_versions_message_id"), table_name="message_versions")
    op.drop_table("message_versions")
    with op.batch_alter_table("messages", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint(op.f("fk_messages_deleted_by_users"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_messages_reply_to_messages"), type_="foreignkey")
        for column in (
            "mentions_room",
            "version",
            "deleted_by",
            "deleted_at",
            "edited_at",
            "reply_to",
        ):
            batch.drop_column(column)
