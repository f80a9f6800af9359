"""Rooms, memberships and the change log; every existing message moves into `general`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

The room everyone had so far becomes `general` (public, a default room every account joins), and
every existing account becomes its member. Messages keep their ids, order, authors and times.
The change log starts with one `message` event per existing message, numbered as the message
(so an old client's catch-up cursor, a message id, is still a valid position in the log); new
events continue above.

Downgrading is refused while any message lives outside `general`: the previous release has one
room for everyone, and folding private conversations into it would publish them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from chat.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENERAL_ID = 1


def upgrade() -> None:
    _create_rooms()
    _create_memberships()
    _move_messages_into_general()
    _create_events()


def _create_rooms() -> None:
    rooms = op.create_table(
        "rooms",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("topic", sa.String(500), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_by", _ID, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rooms")),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_rooms_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("name", name=op.f("uq_rooms_name")),
        sqlite_autoincrement=True,
    )
    op.bulk_insert(
        rooms,
        [
            {
                "id": GENERAL_ID,
                "name": "general",
                "title": "General",
                "topic": "",
                "visibility": "public",
                "kind": "room",
                "archived": False,
                "is_default": True,
                "created_by": None,
                "created_at": datetime.now(UTC),
            }
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval('rooms_id_seq', (SELECT max(id) FROM rooms))")


def _create_memberships() -> None:
    op.create_table(
        "memberships",
        sa.Column("room_id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
        sa.Column("last_read_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "user_id", name=op.f("pk_memberships")),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_memberships_room_id_rooms"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_memberships_user_id_users"), ondelete="CASCADE"
        ),
    )
    op.create_index("ix_memberships_user_id", "memberships", ["user_id"])
    # Everyone who had an account could read everything: they are all members of general, and
    # have read it all (nothing is "unread" because of an upgrade).
    op.execute(
        sa.text(
            "INSERT INTO memberships (room_id, user_id, role, joined_at, last_read_id) "
            "SELECT :general, id, 'member', created_at, "
            "(SELECT coalesce(max(id), 0) FROM messages) FROM users"
        ).bindparams(general=GENERAL_ID)
    )


def _move_messages_into_general() -> None:
    with op.batch_alter_table("messages", table_kwargs={"sqlite_autoincrement": True}) as batch:
        # The default fills the existing rows (PostgreSQL without rewriting the table); the
        # application always names the room.
        batch.add_column(
            sa.Column("room_id", _ID, nullable=False, server_default=sa.text(str(GENERAL_ID)))
        )
        batch.create_foreign_key(
            op.f("fk_messages_room_id_rooms"), "rooms", ["room_id"], ["id"], ondelete="CASCADE"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("messages", "room_id", server_default=None)
    op.create_index("ix_messages_room_id_id", "messages", ["room_id", "id"])


def _create_events() -> None:
    op.create_table(
        "events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("room_id", _ID, nullable=True),
        sa.Column("user_id", _ID, nullable=True),
        sa.Column("message_id", _ID, nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_events_room_id_rooms"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_events_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_events_message_id_messages"),
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.execute(
        sa.text(
            "INSERT INTO events (id, kind, room_id, message_id, created_at) "
            "SELECT id, 'message', room_id, id, created_at FROM messages"
        )
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval('events_id_seq', greatest((SELECT max(id) FROM events), "
            "(SELECT last_value FROM messages_id_seq), 1))"
        )
    elif op.get_bind().dialect.name == "sqlite":
        # The log continues above every message id handed out so far, even the highest ones
        # whose rows are gone (AUTOINCREMENT's own high-water mark).
        op.execute(
            "UPDATE sqlite_sequence SET seq = (SELECT max(seq) FROM sqlite_sequence "
            "WHERE name IN ('events', 'messages')) WHERE name = 'events'"
        )
        op.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'events', seq FROM sqlite_sequence "
            "WHERE name = 'messages' AND NOT EXISTS "
            "(SELECT 1 FROM sqlite_sequence WHERE name = 'events')"
        )


def downgrade() -> None:
    bind = op.get_bind()
    elsewhere = bind.execute(
        sa.text("SELECT count(*) FROM messages WHERE room_id != :general"),
        {"general": GENERAL_ID},
    ).scalar_one()
    if elsewhere:
        raise RuntimeError(
            f"{elsewhere} message(s) live in rooms other than general; the previous release "
            "would show them to everyone. Export or delete them first."
        )
    op.drop_table("events")
    op.drop_index("ix_messages_room_id_id", table_name="messages")
    with op.batch_alter_table("messages", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint(op.f("fk_messages_room_id_rooms"), type_="foreignkey")
        batch.drop_column("room_id")
    op.drop_index("ix_memberships_user_id", table_name="memberships")
    op.drop_table("memberships")
    op.drop_table("rooms")
