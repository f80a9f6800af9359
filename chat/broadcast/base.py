"""The interface every fan-out backend implements (in-process memory, Redis, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

# Called once per published frame on every node, in publish order, from the event loop.
FrameHandler = Callable[[str], None]


class BroadcastBackend(ABC):
    """Carries serialized frames from the node that stored a message to every node's hub."""

    @abstractmethod
    async def start(self, on_frame: FrameHandler) -> None:
        """Connect and begin handing every published frame to `on_frame`."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop listening and release connections; safe to call twice."""

    @abstractmethod
    async def publish(self, frames: Sequence[str]) -> None:
        """Publish frames in order. Raises if the backend cannot take them."""

    @property
    @abstractmethod
    def ready(self) -> bool:
        """Whether frames published now reach the other nodes."""
