"""Merging of a session's streamed events under backpressure (PROTOCOL.md §7).

A run of one session's streamed events of one kind, oldest first, becomes ONE envelope
that stands for all of them: the newest one, carrying the text of the whole run. So the
merged event keeps the ``seq``, ``index`` and ``accumulated_length`` of its newest part,
and a reader that resumes ``after_seq`` of it has read every part (docs/protocol-notes.md).

- ``content_chunk`` and ``reasoning_chunk`` concatenate ``content``; each kind counts its
  own ``index``/``accumulated_length`` (§9), so only events of one kind merge.
- ``tool_call_delta`` concatenates ``arguments_delta``, only within one call ``id``.

Pure functions on envelopes: nothing is mutated, the merged envelope is a new dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from server.protocol.envelope import Envelope

__all__ = ["MAX_MERGED_CHARS", "STREAMED_TEXT", "can_merge", "merge"]

STREAMED_TEXT: dict[str, str] = {
    "content_chunk": "content",
    "reasoning_chunk": "content",
    "tool_call_delta": "arguments_delta",
}
"""The streamed event kinds that may merge, and the field whose text concatenates."""

MAX_MERGED_CHARS = 16_384
"""A merged event grows to about this many characters, then new text starts a new event:
each merge copies the text, so unbounded merging would go quadratic."""


def can_merge(older: Envelope, newer: Envelope) -> bool:
    """True when ``newer`` may be merged onto ``older`` (same session, kind and call)."""
    kind = older["type"]
    if kind not in STREAMED_TEXT or newer["type"] != kind:
        return False
    if older.get("session") != newer.get("session"):
        return False
    return kind != "tool_call_delta" or bool(older["data"]["id"] == newer["data"]["id"])


def merge(run: Sequence[Envelope]) -> Envelope:
    """One envelope for ``run``: its newest event, with the text of every event in it.

    ``run`` is oldest first and non-empty, and each event can_merge() onto the one
    before it. A run of one is returned as it is.
    """
    newest = run[-1]
    if len(run) == 1:
        return newest
    for older, newer in pairwise(run):
        if not can_merge(older, newer):
            raise ValueError(f"cannot merge {newer['type']} onto {older['type']}")
    field = STREAMED_TEXT[newest["type"]]
    data = dict(newest["data"])
    data[field] = "".join([event["data"][field] for event in run])
    merged = dict(newest)
    merged["data"] = data
    return merged
