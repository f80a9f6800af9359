"""The database schema as typed ORM models. Migrations in `migrations/` must agree with it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations can refer to (and batch-alter) them on every engine.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MAX_CLIENT_ID_CHARS = 64
MAX_AUTHOR_CHARS = 64
MAX_USERNAME_CHARS = 32
MAX_DISPLAY_NAME_CHARS = 64
MAX_EMAIL_CHARS = 254
MAX_TOKEN_NAME_CHARS = 64
TOKEN_HASH_CHARS = 64  # hex SHA-256
# A PKCE code_verifier has at most 128 characters (RFC 7636); nonces are shorter.
MAX_OIDC_SECRET_CHARS = 128
MAX_URL_CHARS = 2048

# SQLite only aliases the rowid for a column typed exactly INTEGER PRIMARY KEY.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware UTC datetimes; SQLite keeps no zone, so values come back aware in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; use UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """An account. Never deleted (disabled instead), so a username is never reused."""

    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    # Lower case a-z 0-9 _ . - only, so unique means unique case-insensitively.
    username: Mapped[str] = mapped_column(String(MAX_USERNAME_CHARS), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(String(MAX_DISPLAY_NAME_CHARS), nullable=False)
    # NFKC case-folded display name: look-alikes of a name collide with it (chat.auth.names).
    display_key: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    email: Mapped[str | None] = mapped_column(String(MAX_EMAIL_CHARS), nullable=True)
    # None for accounts that sign in only through single sign-on or a trusted proxy.
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False, default="member")
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuthSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_CHARS), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class ApiToken(Base):
    """A personal API token for a program. Shown once; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(MAX_TOKEN_NAME_CHARS), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_CHARS), nullable=False, unique=True)
    # The first characters of the token, to recognise it in a list (never enough to use it).
    hint: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Invite(Base):
    """A registration code for CHAT_REGISTRATION=invite: N uses, until it expires."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_CHARS), nullable=False, unique=True)
    hint: Mapped[str] = mapped_column(String(32), nullable=False)
    max_uses: Mapped[int] = mapped_column(Integer, nullable=False)
    uses: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ExternalIdentity(Base):
    """An account's identity at an OpenID provider: linked by (issuer, sub), never by email."""

    __tablename__ = "external_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    issuer: Mapped[str] = mapped_column(String(255), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class OidcLogin(Base):
    """A single sign-on that left for the provider and has not come back yet (chat.auth.sso).

    Keyed by the hash of its `state`; bound to the browser that started it by the hash of a
    random value in that browser's cookie. Taken (deleted) when the browser comes back, and
    refused after ten minutes; expired rows are deleted whenever a new sign-on starts.
    """

    __tablename__ = "oidc_logins"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_CHARS), nullable=False, unique=True)
    browser_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_CHARS), nullable=False)
    nonce: Mapped[str] = mapped_column(String(MAX_OIDC_SECRET_CHARS), nullable=False)
    code_verifier: Mapped[str] = mapped_column(String(MAX_OIDC_SECRET_CHARS), nullable=False)
    redirect_uri: Mapped[str] = mapped_column(String(MAX_URL_CHARS), nullable=False)
    next_path: Mapped[str] = mapped_column(String(MAX_URL_CHARS), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)


class Room(Base):
    """A conversation: a public or private room, or a direct message (kind "dm")."""

    __tablename__ = "rooms"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    # URL slug, unique; a DM's is dm-<user ids> (chat.rooms.names.dm_name), so one per set.
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    title: Mapped[str] = mapped_column(String(100), nullable=False)
    topic: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    visibility: Mapped[str] = mapped_column(String(16), nullable=False)  # public | private
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="room")  # room | dm
    archived: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Every new account joins the default rooms (general, and those an admin marks).
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Membership(Base):
    """A user in a room, with their role and how far they have read."""

    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_user_id", "user_id"),)

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)  # owner | moderator | member
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # The highest message id this user has seen in this room (0: none).
    last_read_id: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class Event(Base):
    """The change log: every lasting change, in one monotonic sequence (`id`, the cursor
    clients and relays resume from). A message's event points at the message; membership,
    read-position and room changes carry what they need in `data` (JSON)."""

    __tablename__ = "events"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    # Who sees it: the room's subscribers, or (room None) the one user it is for.
    room_id: Mapped[int | None] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), nullable=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), nullable=True
    )
    data: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Message(Base):
    __tablename__ = "messages"
    # AUTOINCREMENT: ids are public cursors, so SQLite must never hand out an id again.
    __table_args__ = (
        Index("ix_messages_user_id", "user_id"),
        # Every history page and unread count is a range of one room's ids.
        Index("ix_messages_room_id_id", "room_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    author: Mapped[str | None] = mapped_column(String(MAX_AUTHOR_CHARS), nullable=True)
    client_id: Mapped[str | None] = mapped_column(
        String(MAX_CLIENT_ID_CHARS), nullable=True, unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # The signed-in author; None for a guest (and for every message from before accounts).
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False)
    # The message this one answers (same room).
    reply_to: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), nullable=True
    )
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A deleted message keeps its row (the history's order and ids) but not its body.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    deleted_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # Bumped by every edit, delete and reaction: what a rendering is cached under. The
    # server defaults keep rows written by other tools (imports, older nodes) valid.
    version: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    # An owner or moderator wrote @room: every member is mentioned.
    mentions_room: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )

    def __repr__(self) -> str:
        return f"Message(id={self.id!r}, author={self.author!r}, body={self.body[:40]!r})"


class MessageVersion(Base):
    """A body a message had before an edit, kept for the room's moderators. Gone with the
    message's body when it is deleted."""

    __tablename__ = "message_versions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True
    )
    body: Mapped[str] = mapped_column(Text, nullable=False)
    # When this body was written (the message's creation, or the edit before).
    written_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Reaction(Base):
    """One person's emoji on one message (at most one of each emoji per person)."""

    __tablename__ = "reactions"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    emoji: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Mention(Base):
    """A member named with @username in a message: counted apart from unread."""

    __tablename__ = "mentions"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
