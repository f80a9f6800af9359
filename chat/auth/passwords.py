"""Password rules and argon2id hashing that never runs on the event loop.

Hashing costs tens of milliseconds of CPU and 64 MiB by design; it runs in a small thread pool
(argon2-cffi releases the GIL), at most `concurrency` at a time, so a storm of sign-ins waits
its turn instead of stalling fan-out or exhausting memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chat.errors import ClientError

T = TypeVar("T")

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 256

COMMON_PASSWORDS = frozenset(
    line.strip()
    for line in (files("chat.auth") / "common-passwords.txt").read_text("utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)


def check_password_rules(value: object) -> str:
    """The password, or a ClientError naming the rule it breaks."""
    if not isinstance(value, str):
        raise ClientError("invalid_password", "'password' must be a string")
    if len(value) < MIN_PASSWORD_CHARS:
        raise ClientError(
            "password_too_short", f"a password needs at least {MIN_PASSWORD_CHARS} characters"
        )
    if len(value.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise ClientError(
            "password_too_long", f"a password has at most {MAX_PASSWORD_BYTES} bytes (UTF-8)"
        )
    if "\x00" in value:
        raise ClientError("invalid_password", "a password may not contain NUL characters")
    if value.lower() in COMMON_PASSWORDS:
        raise ClientError(
            "password_too_common", "that password is one of the most common ones; choose another"
        )
    return value


class PasswordHashing:
    """argon2id with argon2-cffi's default parameters (RFC 9106's second recommendation)."""

    def __init__(self, *, concurrency: int = 2, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="argon2")
        # Verified when the user is unknown, so "no such user" takes as long as "wrong
        # password" (no enumeration by timing).
        self._decoy = self._hasher.hash("decoy password, never a real one")

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches; an absent hash costs the same time and says no."""
        candidate = stored_hash if stored_hash is not None else self._decoy
        try:
            matches = await self._run(self._hasher.verify, candidate, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return bool(matches) and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        with contextlib.suppress(InvalidHashError):
            return self._hasher.check_needs_rehash(stored_hash)
        return False

    async def _run(self, function: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
