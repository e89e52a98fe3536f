"""The encoder seam: how a batch of envelopes becomes the bytes a transport writes.

Every output format is one Encoder (one module in ``protocol/``); the writers take one as a
parameter and only move its bytes. An encoder serves one stream (SSE) or one connection
(WebSocket) and may keep state for it (an OpenAI completion id, the text parts still open).

Encoders that feed /metrics count what they encode into a ``Tally`` (events and payload
bytes by event type) in the same pass, so counting costs no second loop over the batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from server.protocol.envelope import Envelope

__all__ = ["Encoder", "Handler", "Tally", "encode_by_type"]


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


Handler = Callable[[dict[str, Any], bytearray], None]
"""Appends one event's blocks (from its ``data``) to the output buffer."""


def encode_by_type(
    handlers: Mapping[str, Handler], tally: Tally | None, event: Envelope, out: bytearray
) -> None:
    """Encode ``event`` with the handler for its type into ``out``, counting it for /metrics.

    The shared path of the formats that map each event type onto blocks of their own (the
    OpenAI chunks, the AI SDK stream); their per-token text path stays inline in each.
    Event types a format has no place for are left out.
    """
    kind = event["type"]
    handler = handlers.get(kind)
    if handler is None:
        return
    if tally is None:
        handler(event["data"], out)
        return
    before = len(out)
    handler(event["data"], out)
    tally.events[kind] += 1
    tally.bytes[kind] += len(out) - before
