"""Password hashing runs off the loop, and its queue is bounded."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from argon2 import PasswordHasher

from chat.auth.passwords import HASHING_NICENESS, PasswordHashing
from chat.errors import TryLater

# Cheap parameters: these tests are about the queue, not about argon2's cost.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.mark.anyio
async def test_verify_accepts_the_password_and_refuses_another() -> None:
    hashing = PasswordHashing(hasher=FAST)
    try:
        stored = await hashing.hash("correct horse")
        assert await hashing.verify(stored, "correct horse")
        assert not await hashing.verify(stored, "wrong horse")
        assert not await hashing.verify(None, "correct horse")
    finally:
        hashing.close()


@pytest.mark.anyio
async def test_a_full_queue_refuses_at_once_with_503_and_recovers() -> None:
    hashing = PasswordHashing(concurrency=1, max_waiting=2, hasher=FAST)
    try:
        stored = await hashing.hash("correct horse")
        outcomes = await asyncio.gather(
            *(hashing.verify(stored, "correct horse") for _ in range(5)), return_exceptions=True
        )
        refused = [o for o in outcomes if isinstance(o, TryLater)]
        assert outcomes.count(True) == 2
        assert len(refused) == 3
        assert {(e.status, e.code, e.retry_after_header) for e in refused} == {
            (503, "signins_busy", "1")
        }
        # Once the queue drains, sign-ins are accepted again.
        assert await hashing.verify(stored, "correct horse")
    finally:
        hashing.close()


@pytest.mark.anyio
async def test_hashing_threads_run_at_a_lower_cpu_priority_than_the_loop() -> None:
    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    hashing = PasswordHashing(hasher=FAST)
    try:
        in_pool = await hashing._run(niceness)  # the pool itself, not a public path
        assert in_pool >= niceness() + HASHING_NICENESS or in_pool == 19
    finally:
        hashing.close()
