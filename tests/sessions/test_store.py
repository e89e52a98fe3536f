"""The shared store's sans-I/O parts: the log reader, and the replay sink's merging rule."""

from __future__ import annotations

from typing import Any

import orjson

from server.config import StoreConfig
from server.protocol.envelope import Envelope
from server.protocol.stream import SessionStream
from server.sessions.buffer import ReplayBuffer, ReplayingSink
from server.sessions.emitter import Emitter
from server.sessions.outbox import Outbox
from server.sessions.store import MemoryStore, build_store
from server.sessions.store.replay import (
    LogReader,
    attach_mark,
    decode_control,
    encode_batch,
    issued_at,
    new_token,
    shareable,
    token_key,
)
from tests._client import check_session


def session_events(n_chunks: int) -> list[Envelope]:
    stream = SessionStream("s")
    events = [stream.start(provider="sim", model="m", resume_token="t")]
    events += [stream.chunk(f"w{i} ") for i in range(n_chunks)]
    return events + stream.complete()


def entries(events: list[Envelope], size: int) -> list[bytes]:
    return [encode_batch(events[i : i + size])[0] for i in range(0, len(events), size)]


def test_the_reader_sends_each_event_once_in_order_after_the_cut() -> None:
    events = session_events(10)
    log = entries(events, 3)
    reader = LogReader("s", after_seq=4)
    # The replay and the live follow overlap by an entry: nothing is sent twice.
    got = reader.feed(log[:3]) + reader.feed(log[2:])
    assert [e["seq"] for e in got] == list(range(5, len(events)))
    assert reader.ended
    assert check_session(events[:5] + got)["reason"] == "complete"


def test_a_trimmed_log_starts_with_the_recovery_metadata() -> None:
    events = session_events(10)
    text = "".join(e["data"]["content"] for e in events if e["type"] == "content_chunk")
    reader = LogReader("s", after_seq=1)
    got = reader.feed(entries(events[6:], 2), text)
    assert got[0]["type"] == "metadata" and got[0]["seq"] == 5
    assert got[0]["data"] == {"recovered": False, "content_so_far": "w0 w1 w2 w3 w4 "}
    assert [e["seq"] for e in got[1:]] == list(range(6, len(events)))


def test_a_lost_owner_ends_the_stream_with_node_lost() -> None:
    events = session_events(10)[:5]  # start and four chunks, then the owner died
    reader = LogReader("s", after_seq=2)
    got = reader.feed(entries(events, 2)) + reader.node_lost()
    whole = events[:3] + got
    end = check_session(whole)
    assert end["reason"] == "error"
    assert whole[-2]["data"]["code"] == "node_lost" and whole[-2]["data"]["retryable"] is True


def test_node_lost_after_the_client_saw_more_than_the_log_keeps_seq_increasing() -> None:
    events = session_events(10)[:3]
    reader = LogReader("s", after_seq=6)
    got = reader.feed(entries(events, 5)) + reader.node_lost()
    assert [e["seq"] for e in got] == [7, 8]
    assert got[-1]["data"]["chunks"] == 2  # the chunks the log knows of


def test_control_messages_are_parsed_defensively() -> None:
    assert decode_control(orjson.dumps({"op": "cancel", "key": "k"})) == {
        "op": "cancel",
        "key": "k",
    }
    for raw in (b"not json", b"[]", orjson.dumps({"op": 1, "key": "k"})):
        assert decode_control(raw) is None


def test_tokens_are_stored_as_their_sha256() -> None:
    key = token_key("secret")
    assert len(key) == 64 and "secret" not in key


def test_the_log_holds_stream_start_without_its_token() -> None:
    start = session_events(0)[0]
    logged = shareable(start)
    assert "resume_token" not in logged["data"] and b"resume_token" not in encode_batch([logged])[0]
    assert start["data"]["resume_token"] == "t"  # what the client is sent is untouched
    assert {**logged["data"], "resume_token": "t"} == start["data"]


def test_a_token_says_when_it_was_issued_and_nothing_else() -> None:
    token = new_token(1_700_000_000.123)
    assert issued_at(token) == 1_700_000_000.123
    assert new_token(1.0) != new_token(1.0)  # 24 random bytes follow the time
    assert len(token) == 40 and token.isascii()
    for foreign in ("secret", token[:-4], "!" * 40, "é"):
        assert issued_at(foreign) is None


def test_a_relay_stops_at_a_takeover_by_anyone_else() -> None:
    """Marks at or below the epoch it attached at, and its own mark, change nothing; the
    first newer mark by someone else ends the reading exactly there."""
    events = session_events(6)
    log = [
        encode_batch([attach_mark(1, "x"), *events[:3]])[0],  # older than this reader
        encode_batch([*events[3:5], attach_mark(2, "me")])[0],
        encode_batch([events[5], attach_mark(3, "other"), *events[6:]])[0],
    ]
    reader = LogReader("s", after_seq=1, epoch=1, holder="me")
    got = reader.feed(log[:2]) + reader.feed(log[2:])
    assert [e["seq"] for e in got] == [2, 3, 4, 5]
    assert reader.superseded and reader.done and not reader.ended
    assert reader.feed(log) == []  # and nothing later either


def test_relays_are_ranked_by_ticket_and_a_resume_on_the_owner_by_epoch() -> None:
    """A relay with a later ticket wins, whatever epoch it saw; so does one's mark for a
    reader with an earlier ticket, while a reader with a later one reads past it."""
    events = session_events(6)
    log = [
        encode_batch([*events[:3], attach_mark(1, "older", ticket=1)])[0],
        encode_batch([*events[3:5], attach_mark(2, "me", ticket=2)])[0],
        encode_batch([events[5], attach_mark(3, "newer", ticket=3), *events[6:]])[0],
    ]
    reader = LogReader("s", after_seq=1, epoch=0, holder="me", ticket=2)  # a stale epoch
    assert [e["seq"] for e in reader.feed(log)] == [2, 3, 4, 5]
    assert reader.superseded
    older = LogReader("s", after_seq=1, epoch=0, holder="older", ticket=1)
    assert [e["seq"] for e in older.feed(log)] == [2, 3, 4]  # stops at "me"
    local = [encode_batch([*events[:3], attach_mark(1, "local"), *events[3:]])[0]]
    stale = LogReader("s", after_seq=1, epoch=0, holder="me", ticket=5)
    assert [e["seq"] for e in stale.feed(local)] == [2]  # resumed on the owner since
    saw_it = LogReader("s", after_seq=1, epoch=1, holder="me", ticket=5)
    assert saw_it.feed(local)[-1]["type"] == "stream_end" and saw_it.ended


def test_an_attach_overtaken_by_a_newer_takeover_is_refused() -> None:
    """The owner's side: a relay's attach counts only if no relay with a later ticket
    attached and no resume on the owner happened after the epoch it saw; a release only
    from the current holder."""
    store: Any = build_store(
        StoreConfig(type="redis", url="redis://127.0.0.1:1/0"), grace_s=30, buffer_events=16
    )
    log: Any = store.open_log("s", "k", http=False)
    assert log.attach(0, "b", 2) and (log.epoch, log.holder) == (1, "b")
    assert not log.attach(0, "late", 1)  # an earlier ticket: an older resume than b's
    assert log.attach(0, "c", 3) and log.holder == "c"  # a newer one, on a stale epoch
    log.take_over()  # a resume on the owner itself
    assert not log.release("c")  # c's release comes late: it no longer holds it
    assert not log.attach(2, "d", 4)  # it did not see the resume on the owner
    assert log.attach(3, "e", 5) and log.release("e") and log.holder is None
    marks = [item for item in log.pending if "attach" in item]
    assert marks == [
        attach_mark(1, "b", 2),
        attach_mark(2, "c", 3),
        attach_mark(3, "local"),
        attach_mark(4, "e", 5),
    ]


class FakeLog:
    """An EventLog whose flush the test controls."""

    def __init__(self) -> None:
        self.pending: list[Envelope] = []
        self.written: list[dict[str, Any]] = []

    def append(self, envelope: Envelope) -> None:
        self.pending.append(envelope)

    def holds(self, envelope: Envelope) -> bool:
        return bool(self.pending) and self.pending[-1] is envelope

    def replace(self, newest: Envelope, merged: Envelope) -> None:
        self.pending[-1] = merged

    def detached(self) -> None:
        return None

    def attach(self, basis: int, holder: str, ticket: int) -> bool:
        return False

    def release(self, holder: str) -> bool:
        return False

    def take_over(self) -> None:
        return None

    def index_chat(self, message_id: str) -> None:
        return None

    def flush(self) -> None:
        self.written += orjson.loads(orjson.dumps(self.pending))
        self.pending = []


def test_a_chunk_already_logged_is_never_merged_into() -> None:
    """Under backpressure the outbox merges text into its queued chunk, but not once the
    shared log has written that chunk: the log and the client see the same events."""
    outbox = Outbox(
        merge_bytes=0, max_bytes=1 << 20, on_ready=lambda: None, on_overflow=lambda: None
    )
    outbox.paused = True  # the client lags: merging is on
    log = FakeLog()
    sink = ReplayingSink(ReplayBuffer(1000), outbox, log)
    stream = SessionStream("s")
    out = Emitter(stream, sink)
    out.send(stream.start(provider="sim", model="m", resume_token="t"))
    for i in range(12):
        out.text(f"w{i} ")
        if i % 4 == 1:
            log.flush()  # the store's writer ran between two tokens
    for event in stream.complete():
        out.send(event)
    log.flush()
    delivered = outbox.drain()
    assert check_session(delivered)["text"] == "".join(f"w{i} " for i in range(12))
    assert log.written == orjson.loads(orjson.dumps(delivered))
    assert outbox.merged > 0  # merging still happens between two flushes


def test_the_memory_store_shares_nothing() -> None:
    store = build_store(StoreConfig(), grace_s=30, buffer_events=16)
    assert isinstance(store, MemoryStore) and not store.distributed
    assert store.open_log("s", "k", http=False) is None
    assert store.health() == {"type": "memory", "healthy": True}


def test_a_closed_outbox_leaves_no_hole_in_the_log() -> None:
    outbox = Outbox(
        merge_bytes=0, max_bytes=1 << 20, on_ready=lambda: None, on_overflow=lambda: None
    )
    outbox.paused = True  # the client lags: merging is on
    log = FakeLog()
    sink = ReplayingSink(ReplayBuffer(1000), outbox, log)
    stream = SessionStream("s")
    out = Emitter(stream, sink)
    out.send(stream.start(provider="sim", model="m", resume_token="t"))
    out.text("a")
    outbox.close()  # e.g. a slow consumer overflowed; the detach comes a step later
    out.text("b")
    for event in stream.complete():
        out.send(event)
    log.flush()
    assert check_session(log.written)["text"] == "ab"
