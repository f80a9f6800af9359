"""The revocation signal: one encoding, written by the server and by `chat users`, read by
every node."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chat.auth.principal import Account, Credential, Revocation, SignedIn
from chat.auth.revocations import Revocations, read_revocation_signal, revocation_signal
from chat.broadcast.factory import crosses_processes, publish_signal_once
from chat.broadcast.hub import Hub, Subscriber
from chat.broadcast.memory import MemoryBackend


@pytest.mark.parametrize(
    "revocation",
    [
        Revocation(user_id=7, whole_user=True),
        Revocation(user_id=8, session_ids=(1, 2), token_ids=(3,)),
    ],
)
def test_a_revocation_survives_its_signal(revocation: Revocation) -> None:
    signal = revocation_signal(revocation)
    assert "\n" not in signal
    assert read_revocation_signal(signal) == revocation


def test_a_signal_of_another_kind_is_not_a_revocation() -> None:
    assert read_revocation_signal('{"kind":"something-else","user_id":1}') is None


@pytest.mark.parametrize(
    "signal",
    ["not json", "[1, 2]", '{"kind":"revoked"}', '{"kind":"revoked","user_id":"x"}'],
)
def test_a_malformed_revocation_signal_is_a_value_error(signal: str) -> None:
    with pytest.raises(ValueError):
        read_revocation_signal(signal)


def test_only_brokers_cross_processes() -> None:
    assert crosses_processes("redis://127.0.0.1:6379/0")
    assert crosses_processes("postgresql+asyncpg://chat@db/chat")
    assert not crosses_processes("memory://")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "signal", "message"),
    [
        ("memory://", "{}", "reaches no other process"),
        ("redis://127.0.0.1:6379/0", "two\nlines", "one line"),
        ("kafka://broker", "{}", "unsupported CHAT_BROADCAST_URL scheme 'kafka'"),
    ],
)
async def test_publish_signal_once_refuses_what_it_cannot_send(
    url: str, signal: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await publish_signal_once(url, channel="chat:messages", signal=signal)


def _signed_in(user_id: int, token_id: int) -> SignedIn:
    account = Account(id=user_id, username=f"u{user_id}", display_name=f"U{user_id}", role="member")
    return SignedIn(account, Credential(kind="token", id=token_id))


@pytest.mark.anyio
async def test_a_recheck_closes_what_it_found_revoked_and_not_what_opened_meanwhile() -> None:
    hub = Hub(queue_size=8)
    revocations = Revocations(hub=hub, backend=MemoryBackend(), recheck_seconds=30)
    kept = hub.subscribe(_signed_in(1, 10), user_id=1)
    revoked = hub.subscribe(_signed_in(2, 20), user_id=2)
    late: list[Subscriber] = []

    async def still_valid(
        *, session_ids: Sequence[int], token_ids: Sequence[int], user_ids: Sequence[int]
    ) -> tuple[set[int], set[int], set[int]]:
        assert sorted(token_ids) == [10, 20]
        # A socket opens while the query runs: its token was never asked about.
        late.append(hub.subscribe(_signed_in(3, 30), user_id=3))
        return set(), {10}, set()

    assert await revocations.recheck(still_valid) == 1
    assert set(hub.subscribers()) == {kept, *late}
    assert revoked not in hub.subscribers()
