"""The encoder seam: how a batch of envelopes becomes the bytes a transport writes.

Every output format is one Encoder (one module in ``protocol/``); the writers take one as a
parameter and only move its bytes. An encoder serves one stream (SSE) or one connection
(WebSocket) and may keep state for it (an OpenAI completion id, the text parts still open).

Encoders that feed /metrics count what they encode into a ``Tally`` (events and payload
bytes by event type) in the same pass, so counting costs no second loop over the batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from server.protocol.envelope import Envelope

__all__ = ["Encoder", "Tally"]


class Encoder(Protocol):
    """Turns one stream's or one connection's envelopes into wire bytes."""

    def encode(self, batch: Sequence[Envelope]) -> bytes:
        """The bytes to write for ``batch`` (oldest first), in one buffer."""
        ...

    def finish(self) -> bytes:
        """The trailer after the last event: ``data: [DONE]`` for SSE, nothing for WS."""
        ...


class Tally(Protocol):
    """Events and payload bytes encoded, by event type (server.metrics.TransportTally)."""

    events: defaultdict[str, int]
    bytes: defaultdict[str, int]
