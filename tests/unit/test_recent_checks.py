"""Socket handshakes may reuse a credential check made seconds ago, never past a revocation."""

from __future__ import annotations

from chat.auth.principal import Account, Credential, Revocation, SignedIn
from chat.auth.recent_checks import RecentChecks

ADA = Account(id=3, username="ada", display_name="Ada", role="member")
BOB = Account(id=4, username="bob", display_name="Bob", role="member")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def token(account: Account, token_id: int) -> SignedIn:
    return SignedIn(account, Credential("token", token_id))


def test_a_check_is_reused_for_its_ttl_only() -> None:
    clock = Clock()
    recent = RecentChecks(ttl=10.0, clock=clock)
    checked = token(ADA, 1)
    recent.keep("token:a", checked, recent.started())
    clock.now = 9.9
    assert recent.get("token:a") is checked
    clock.now = 10.0
    assert recent.get("token:a") is None


def test_a_revocation_forgets_what_it_covers_and_only_that() -> None:
    recent = RecentChecks(clock=Clock())
    recent.keep("token:a1", token(ADA, 1), recent.started())
    recent.keep("token:a2", token(ADA, 2), recent.started())
    recent.keep("session:b", SignedIn(BOB, Credential("session", 7)), recent.started())
    recent.forget(Revocation(user_id=ADA.id, token_ids=(1,)))
    assert recent.get("token:a1") is None
    assert recent.get("token:a2") is not None and recent.get("session:b") is not None
    recent.forget(Revocation(user_id=BOB.id, whole_user=True))
    assert recent.get("session:b") is None


def test_a_check_under_way_when_a_revocation_arrives_is_not_kept() -> None:
    recent = RecentChecks(clock=Clock())
    started = recent.started()  # the database read begins...
    recent.forget(Revocation(user_id=ADA.id, token_ids=(1,)))  # ...a revocation arrives...
    recent.keep("token:a1", token(ADA, 1), started)  # ...and its answer is stale
    assert recent.get("token:a1") is None


def test_bounded() -> None:
    recent = RecentChecks(capacity=2, clock=Clock())
    for n in range(5):
        recent.keep(f"token:{n}", token(ADA, n), recent.started())
    assert recent.get("token:0") is None and recent.get("token:4") is not None
