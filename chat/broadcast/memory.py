"""In-process fan-out: the default for a single server process."""

from __future__ import annotations

from collections.abc import Sequence

from chat.broadcast.base import (
    BroadcastBackend,
    BroadcastMetrics,
    Envelope,
    FrameHandler,
    MessageSource,
    SignalHandler,
    Unmeasured,
)


class MemoryBackend(BroadcastBackend):
    def __init__(self, metrics: BroadcastMetrics | None = None) -> None:
        self._on_frame: FrameHandler | None = None
        self._on_signal: SignalHandler | None = None
        self._metrics = metrics if metrics is not None else Unmeasured()

    async def start(
        self,
        on_frame: FrameHandler,
        *,
        on_signal: SignalHandler | None = None,
        source: MessageSource | None = None,
    ) -> None:
        # One process sees every publish as it happens: there is nothing to replay.
        self._on_frame = on_frame
        self._on_signal = on_signal
        self._metrics.broker_up(True)

    async def stop(self) -> None:
        self._on_frame = None
        self._on_signal = None
        self._metrics.broker_up(False)

    async def publish_signal(self, signal: str) -> None:
        if self._on_signal is not None:
            self._on_signal(signal)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        on_frame = self._on_frame
        if on_frame is None:
            raise RuntimeError("the memory backend is not started")
        on_frame(envelopes)

    @property
    def ready(self) -> bool:
        return self._on_frame is not None
