"""A random program of start / cancel / disconnect / resume / provider faults, against the
real SessionManager, must keep every invariant: each session life, as its client sees it
across connections, has contiguous seq from 0, one stream_end, nothing after it; and no
task outlives the manager."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.config import ProviderConfig, ResumeConfig
from server.errors import SessionError
from server.protocol.envelope import Message, Resume, Start
from server.providers.registry import ProviderRegistry
from server.providers.sim import SimProvider
from server.sessions.manager import SessionManager, SessionScope
from server.sessions.outbox import CollectingSink
from tests._client import check_session

IDS = st.sampled_from(["a", "b", "c"])
CONNS = st.integers(0, 2)
FAULTS = st.sampled_from(
    [{}, {}, {"fail_at": 2}, {"hang_at": 3}, {"fail_code": "provider_timeout", "fail_at": 0}]
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), CONNS, IDS, FAULTS, st.booleans()),
        st.tuples(st.just("cancel"), CONNS, IDS),
        st.tuples(st.just("disconnect"), CONNS),
        st.tuples(st.just("resume"), CONNS, st.integers(0, 20)),
        st.tuples(st.just("step"), st.integers(1, 6)),
    ),
    max_size=30,
)


@dataclass
class Conn:
    scope: SessionScope
    sink: CollectingSink = field(default_factory=CollectingSink)
    read: int = 0
    lives: dict[str, str] = field(default_factory=dict)  # session id -> life attached here


class Client:
    """What the clients have seen, per session life."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.conns = [self.connect() for _ in range(3)]
        self.seen: dict[str, list[dict[str, Any]]] = {}
        self.ids: dict[str, str] = {}
        self.tokens: dict[str, str | None] = {}  # None: not detachable, cannot be resumed
        self.lost: set[str] = set()  # lives whose socket closed under them, unresumable

    def connect(self) -> Conn:
        return Conn(self.manager.open_scope())

    def consume(self) -> None:
        for conn in self.conns:
            for event in conn.sink.events[conn.read :]:
                self.seen[conn.lives[event["session"]]].append(event)
            conn.read = len(conn.sink.events)

    def start(self, i: int, sid: str, params: dict[str, Any], detach: bool) -> None:
        conn = self.conns[i]
        message = Start(
            session=sid,
            messages=(Message("user", "hi"),),
            params={"max_tokens": 4, **params},
            on_disconnect="detach" if detach else "cancel",
        )
        try:
            conn.scope.start(message, conn.sink)
        except SessionError:
            return
        life = f"life{len(self.seen)}"
        token = conn.sink.events[-1]["data"]["resume_token"]
        assert (token is not None) == detach
        conn.lives[sid] = life
        self.seen[life], self.ids[life], self.tokens[life] = [], sid, token
        self.consume()

    def resume(self, i: int, life: str) -> None:
        self.consume()
        sid, conn, token = self.ids[life], self.conns[i], self.tokens[life]
        if token is None:
            return
        after = self.seen[life][-1]["seq"]
        try:
            conn.scope.resume(Resume(sid, token, after), conn.sink)
        except SessionError:
            return
        for other in self.conns:
            if other.lives.get(sid) == life:
                del other.lives[sid]
        conn.lives[sid] = life
        self.consume()

    async def disconnect(self, i: int) -> None:
        self.consume()
        old = self.conns[i]
        for life in old.lives.values():
            ended = self.seen[life][-1]["type"] == "stream_end"
            if self.tokens[life] is None and not ended:
                self.lost.add(life)
        self.conns[i] = self.connect()  # events the old socket gets from now on are lost
        await old.scope.close()


async def run_program(ops: list[tuple[Any, ...]]) -> None:
    sim = SimProvider("sim", ProviderConfig(type="sim", params={"tokens_per_second": 0}))
    manager = SessionManager(ProviderRegistry({"sim": sim}, "sim"), resume=ResumeConfig(grace_s=60))
    client = Client(manager)
    for op in ops:
        match op:
            case ("start", i, sid, params, detach):
                client.start(i, sid, params, detach)
            case ("cancel", i, sid):
                with contextlib.suppress(SessionError):
                    client.conns[i].scope.cancel(sid)
            case ("disconnect", i):
                await client.disconnect(i)
            case ("resume", i, n) if client.seen:
                client.resume(i, list(client.seen)[n % len(client.seen)])
            case ("step", n):
                for _ in range(n):
                    await asyncio.sleep(0)
        client.consume()
    # Finish: each resumable life on a fresh connection of its own, cancelled there if it
    # still runs (some hang), so that its client view can be completed by its tail; the
    # others are cancelled where they are.
    for life in list(client.seen):
        client.conns.append(client.connect())
        client.resume(len(client.conns) - 1, life)
    for conn in client.conns:
        for sid in list(conn.lives):
            with contextlib.suppress(SessionError):
                conn.scope.cancel(sid)
    for _ in range(5):
        await asyncio.sleep(0)
    client.consume()
    for life, events in client.seen.items():
        if life in client.lost:  # seen up to the cut: a valid prefix, and no more
            assert [e["seq"] for e in events] == list(range(len(events)))
            assert all(e["type"] != "stream_end" for e in events)
            continue
        end = check_session(events)
        assert end["reason"] in {"complete", "cancelled", "error"}, end
    await manager.shutdown()
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftovers, leftovers


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_random_programs_keep_every_invariant(ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(run_program(ops), debug=True)
