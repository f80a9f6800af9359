"""What a guest may do (CHAT_GUEST_ACCESS), asked in one place by every route and the socket.

`post` (the default): guests read and post under a name they pick (never an account's);
`read`: guests read, posting says `sign_in_required`; `none`: only signed-in people read or
post (the page redirects to /login, the API answers 401, the socket handshake is refused).
"""

from __future__ import annotations

from chat.auth.principal import Principal, SignedIn
from chat.errors import ClientError
from chat.settings import Settings


def can_read(principal: Principal, settings: Settings) -> bool:
    return isinstance(principal, SignedIn) or settings.guest_access != "none"


def can_post(principal: Principal, settings: Settings) -> bool:
    return isinstance(principal, SignedIn) or settings.guest_access == "post"


def sign_in_required(what: str = "post") -> ClientError:
    return ClientError(
        "sign_in_required", f"sign in to {what}: this server does not let guests", status=401
    )


def require_reader(principal: Principal, settings: Settings) -> None:
    if not can_read(principal, settings):
        raise sign_in_required("read")


def require_poster(principal: Principal, settings: Settings) -> None:
    if not can_post(principal, settings):
        raise sign_in_required("post")


def rate_limit_key(principal: Principal, address: str) -> str:
    """Rate limits and connection caps count per account when there is one: a team behind one
    NAT address does not share a budget, and one person cannot multiply theirs by addresses."""
    if isinstance(principal, SignedIn):
        return f"user:{principal.account.id}"
    return f"addr:{address}"


def require_signed_in(principal: Principal) -> SignedIn:
    if not isinstance(principal, SignedIn):
        raise ClientError("unauthorized", "sign in first", status=401)
    return principal


def require_admin(principal: Principal) -> SignedIn:
    signed_in = require_signed_in(principal)
    if not signed_in.account.is_admin:
        raise ClientError("forbidden", "only an admin may do this", status=403)
    return signed_in
