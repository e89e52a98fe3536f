"""Outbox: queueing, chunk merging under pressure, and the hard cap."""

from __future__ import annotations

from server.protocol.envelope import Envelope
from server.protocol.merge import MAX_MERGED_CHARS
from server.protocol.stream import SessionStream
from server.sessions.buffer import ReplayBuffer, ReplayingSink
from server.sessions.emitter import Emitter
from server.sessions.outbox import Outbox, Sink
from tests._client import check_session


class Signals:
    def __init__(self) -> None:
        self.ready = 0
        self.overflows = 0

    def on_ready(self) -> None:
        self.ready += 1

    def on_overflow(self) -> None:
        self.overflows += 1


def make(merge_bytes: int = 1000, max_bytes: int = 10_000) -> tuple[Outbox, Signals]:
    signals = Signals()
    outbox = Outbox(
        merge_bytes=merge_bytes,
        max_bytes=max_bytes,
        on_ready=signals.on_ready,
        on_overflow=signals.on_overflow,
    )
    return outbox, signals


def opened(session: str = "s") -> SessionStream:
    stream = SessionStream(session)
    stream.start(provider="sim", model="m", resume_token=None)
    return stream


class Sessions:
    """What sessions do to a sink: one Emitter per stream, made on first use."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.emitters: dict[str, Emitter] = {}

    def send_text(self, stream: SessionStream, text: str) -> Envelope | None:
        return self._emitter(stream).text(text)

    def send(self, stream: SessionStream, envelope: Envelope) -> None:
        self._emitter(stream).send(envelope)

    def _emitter(self, stream: SessionStream) -> Emitter:
        if stream.session_id not in self.emitters:
            self.emitters[stream.session_id] = Emitter(stream, self.sink)
        return self.emitters[stream.session_id]


def test_below_the_merge_threshold_every_text_is_its_own_chunk() -> None:
    outbox, signals = make()
    sessions = Sessions(outbox)
    stream = opened()
    for text in "abc":
        sessions.send_text(stream, text)
    batch = outbox.drain()
    assert [e["data"]["content"] for e in batch] == ["a", "b", "c"]
    assert len(outbox) == 0 and outbox.queued_bytes == 0
    assert signals.ready == 1  # the writer is woken once per batch, not once per event


def test_under_pressure_text_merges_into_the_newest_queued_chunk() -> None:
    """Past merge_bytes, a session's new text joins its queued chunk: no new seq or index."""
    outbox, _ = make(merge_bytes=0)
    sessions = Sessions(outbox)
    outbox.paused = True  # the writer waits on a transport that pushes back
    a, b = opened("a"), opened("b")
    sessions.send_text(a, "x")
    sessions.send_text(b, "1")
    assert sessions.send_text(a, "y") is None
    sessions.send_text(b, "2")
    batch = outbox.drain()
    assert [(e["session"], e["data"]["content"]) for e in batch] == [("a", "xy"), ("b", "12")]
    assert batch[0]["data"]["accumulated_length"] == 2 and outbox.merged == 2
    assert [e["seq"] for e in batch] == [1, 1]


def test_a_queued_non_chunk_event_stops_merging_for_that_session() -> None:
    outbox, _ = make(merge_bytes=0)
    sessions = Sessions(outbox)
    outbox.paused = True
    stream = opened()
    sessions.send_text(stream, "a")
    sessions.send(stream, stream.metadata({"k": 1}))
    sessions.send_text(stream, "b")
    batch = outbox.drain()
    assert [e["type"] for e in batch] == ["content_chunk", "metadata", "content_chunk"]
    assert [e["seq"] for e in batch] == [1, 2, 3]


def test_merged_events_still_form_a_valid_life() -> None:
    outbox, _ = make(merge_bytes=50)
    sessions = Sessions(outbox)
    outbox.paused = True
    stream = SessionStream("s")
    outbox.send(stream.start(provider="sim", model="m", resume_token=None))
    for i in range(200):
        sessions.send_text(stream, f"t{i} ")
    for event in stream.complete():
        outbox.send(event)
    batch = outbox.drain()
    end = check_session(batch)
    assert end["text"] == "".join(f"t{i} " for i in range(200))
    assert len(batch) < 200 and outbox.merged > 0


def test_a_large_queue_does_not_merge_while_the_writer_keeps_up() -> None:
    """Past merge_bytes but not paused (one busy turn of the loop): every text is a chunk,
    until half the hard cap, where merging starts regardless."""
    outbox, _ = make(merge_bytes=100, max_bytes=4000)
    sessions = Sessions(outbox)
    stream = opened()
    for _ in range(10):
        sessions.send_text(stream, "x" * 20)
    assert outbox.merged == 0 and len(outbox) == 10  # 1160 bytes queued, no pressure
    for _ in range(20):
        sessions.send_text(stream, "y" * 20)
    assert outbox.merged > 0


def test_a_merged_chunk_stops_growing_at_its_cap() -> None:
    outbox, _ = make(merge_bytes=0, max_bytes=10_000_000)
    sessions = Sessions(outbox)
    outbox.paused = True
    stream = opened()
    for _ in range(100):
        sessions.send_text(stream, "z" * 1000)
    sizes = [len(e["data"]["content"]) for e in outbox.drain()]
    assert max(sizes) <= MAX_MERGED_CHARS + 1000 and sum(sizes) == 100_000 and len(sizes) > 1


def test_overflow_closes_the_outbox_and_signals_once() -> None:
    outbox, signals = make(merge_bytes=0, max_bytes=500)
    sessions = Sessions(outbox)
    stream = opened()
    sessions.send_text(stream, "x" * 100)
    sessions.send_text(stream, "y" * 600)
    assert signals.overflows == 1 and outbox.closed and len(outbox) == 0
    sessions.send_text(stream, "z")
    outbox.send(stream.end("cancelled"))
    assert signals.overflows == 1 and len(outbox) == 0
    assert stream.text() == "x" * 100 + "y" * 600 + "z"


def test_text_for_a_closed_outbox_still_reaches_the_replay_buffer() -> None:
    """After the transport is gone, new chunks are made (not sent) and recorded for resume."""
    outbox, _ = make()
    stream = opened()
    sink = ReplayingSink(ReplayBuffer(100), outbox)
    sessions = Sessions(sink)
    sessions.send_text(stream, "a")
    outbox.close()
    sessions.send_text(stream, "b")
    sink.send(stream.end("cancelled"))
    events, complete = sink.buffer.after(0)
    assert complete and [e["seq"] for e in events] == [1, 2, 3]
    assert [e["data"].get("content") for e in events[:2]] == ["a", "b"]


def test_the_replay_buffer_holds_the_merged_chunks_the_reader_gets() -> None:
    """A merge swaps the queued chunk in every queue: replay equals delivery, no envelope
    that was queued is ever changed."""
    outbox, _ = make(merge_bytes=0)
    outbox.paused = True
    stream = opened()
    sink = ReplayingSink(ReplayBuffer(100), outbox)
    sessions = Sessions(sink)
    first = sessions.send_text(stream, "a")
    assert sessions.send_text(stream, "b") is None
    assert first is not None
    assert first["data"] == {"content": "a", "index": 0, "accumulated_length": 1}
    delivered = outbox.drain()
    sessions.send_text(stream, "c")  # the merged chunk left: "c" is a chunk of its own
    events, _ = sink.buffer.after(0)
    assert events[:1] == delivered and [e["data"]["content"] for e in events] == ["ab", "c"]
    assert [e["seq"] for e in events] == [1, 2]


def test_under_pressure_reasoning_merges_with_reasoning_only() -> None:
    """Reasoning merges into a queued reasoning chunk, never into content (nor content into it)."""
    outbox, _ = make(merge_bytes=0)
    outbox.paused = True
    stream = opened()
    out = Emitter(stream, outbox)
    out.reasoning("Let ")
    assert out.reasoning("me think.") is None
    out.text("Answer")
    out.reasoning(" Again.")
    batch = outbox.drain()
    assert [(e["type"], e["data"]["content"]) for e in batch] == [
        ("reasoning_chunk", "Let me think."),
        ("content_chunk", "Answer"),
        ("reasoning_chunk", " Again."),
    ]
    assert [e["seq"] for e in batch] == [1, 2, 3]
    assert batch[2]["data"] == {"content": " Again.", "index": 1, "accumulated_length": 20}
