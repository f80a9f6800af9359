"""Password rules and argon2id hashing that never runs on the event loop.

Hashing costs tens of milliseconds of CPU and 64 MiB by design; it runs in a small thread pool
(argon2-cffi releases the GIL), at most `concurrency` at a time, so a storm of sign-ins waits
its turn instead of stalling fan-out or exhausting memory. The wait is bounded too: beyond
`max_waiting` hashes queued, a sign-in is refused at once (503 `signins_busy`, Retry-After)
rather than queued for longer than anyone waits for a login page (at ~0.1-0.3 s of CPU per hash
on 2 cores, 32 queued is a few seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chat.errors import ClientError, TryLater

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


HASHING_NICENESS = 10


def _yield_cpu() -> None:
    """Run this hashing thread (and the lanes argon2 starts from it) at a lower CPU priority.

    Off the loop is not enough on a small machine: argon2id with 4 lanes keeps every core busy
    for a tenth of a second, and the event loop thread then waits for a core like any other.
    Linux gives each thread its own nice value, so fan-out keeps its share during a sign-in
    storm and sign-ins get what is left.
    """
    if hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


class PasswordHashing:
    """argon2id with argon2-cffi's default parameters (RFC 9106's second recommendation)."""

    def __init__(
        self,
        *,
        concurrency: int = 2,
        max_waiting: int = 32,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._hasher = hasher or PasswordHasher()
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="argon2", initializer=_yield_cpu
        )
        self._max_waiting = max_waiting
        self._waiting = 0  # hashes queued or running
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
        if self._waiting >= self._max_waiting:
            raise TryLater(
                "signins_busy",
                "too many sign-ins at once; try again in a moment",
                retry_after=1.0,
                status=503,
            )
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)
        finally:
            self._waiting -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
