"""The cross-node races, forced instead of hoped for: several SessionManagers in this
process, each with its own RedisStore on one real redis-server, and a hook in the store
that holds (or fails) its writer's flushes, so messages between nodes arrive in exactly the
order each test needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from server.config import ProvidersConfig, ResumeConfig, StoreConfig, config_from_mapping
from server.errors import SessionError
from server.protocol.envelope import Envelope, Message, Resume, Start
from server.providers.registry import ProviderRegistry, build_registry
from server.sessions.follower import Follower
from server.sessions.manager import SessionManager, SessionScope
from server.sessions.outbox import CollectingSink
from server.sessions.session import Session
from server.sessions.store.redis import RedisLog, RedisStore, connect
from server.sessions.store.replay import new_token, token_key
from tests._client import check_session
from tests._wait import eventually
from tests.cluster.conftest import HEARTBEAT_S, RedisServer

OP_TIMEOUT_S = 1.0


class HookedStore(RedisStore):
    """A RedisStore whose writer's round trips the test holds (``held``) or fails
    (``failing``: that many flushes fail as if Redis did not answer)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held = asyncio.Event()
        self.held.set()
        self.failing = 0

    async def _execute(self, pipe: Any) -> None:
        await self.held.wait()
        if self.failing:
            self.failing -= 1
            raise ConnectionError("redis did not answer (a test's hook)")
        await super()._execute(pipe)


class Node:
    def __init__(self, manager: SessionManager, store: HookedStore, registry: Any) -> None:
        self.manager = manager
        self.store = store
        self.registry = registry

    def scope(self) -> SessionScope:
        return self.manager.open_scope(max_sessions=None)


Nodes = Callable[..., Any]


@pytest.fixture
async def nodes(redis: RedisServer) -> AsyncIterator[Nodes]:
    """``node = await nodes(grace_s=...)``: a node of a cluster on ``redis``, in-process."""
    started: list[Node] = []

    async def launch(grace_s: float = 30) -> Node:
        providers = config_from_mapping(
            {"providers": {"sim": {"type": "sim", "params": {"tokens_per_second": 0}}}},
            environ={},
        ).providers
        assert isinstance(providers, ProvidersConfig)
        registry: ProviderRegistry = build_registry(providers)
        config = StoreConfig(
            type="redis", url=redis.url, heartbeat_s=HEARTBEAT_S, op_timeout_s=OP_TIMEOUT_S
        )
        store = HookedStore(config, grace_s=grace_s, buffer_events=256)
        resume = ResumeConfig(enabled=True, grace_s=grace_s, buffer_events=256)
        manager = SessionManager(registry, resume=resume, store=store)
        await store.start(manager.on_control)
        node = Node(manager, store, registry)
        started.append(node)
        return node

    try:
        yield launch
    finally:
        for node in started:
            node.store.held.set()
            await node.manager.shutdown()
            await node.store.aclose()
            await node.registry.aclose()


def start_detached(
    node: Node, sid: str, **params: Any
) -> tuple[SessionScope, Session, CollectingSink]:
    """A detachable session on ``node``, in a scope of its own (``close()`` it: detached)."""
    sink = CollectingSink()
    start = Start(
        session=sid,
        messages=(Message(role="user", content=f"prompt {sid}"),),
        params={"max_tokens": 40, "tokens_per_second": 100, **params},
        on_disconnect="detach",
    )
    scope = node.scope()
    return scope, scope.start(start, sink), sink


def resume(scope: SessionScope, session: Session, after_seq: int = 0) -> Any:
    assert session.resume_token is not None
    request = Resume(session=session.id, resume_token=session.resume_token, after_seq=after_seq)
    sink = CollectingSink()
    return scope.resume(request, sink), sink


def ended(sink: CollectingSink) -> bool:
    return any(e["type"] == "stream_end" for e in sink.events)


def seqs(events: list[Envelope]) -> list[int]:
    return [e["seq"] for e in events]


async def redis_keys(redis: RedisServer, session: Session) -> list[str]:
    """Which of the session's keys exist in Redis."""
    assert session.resume_token is not None
    key = token_key(session.resume_token)
    client = connect(redis.url)
    try:
        names = [f"tokenmux:{kind}:{key}" for kind in ("s", "log", "text")]
        return [name for name in names if await client.exists(name)]
    finally:
        await client.aclose()


async def log_items(redis: RedisServer, session: Session) -> list[dict[str, Any]]:
    """Everything the session's shared log holds, in order (events and takeover marks)."""
    assert session.resume_token is not None
    client = connect(redis.url)
    try:
        entries = await client.xrange(f"tokenmux:log:{token_key(session.resume_token)}")
    finally:
        await client.aclose()
    return [item for _, entry in entries for item in orjson.loads(entry[b"e"])]


async def registered(redis: RedisServer, session: Session) -> None:
    async def there() -> bool:
        return bool(await redis_keys(redis, session))

    await eventually(there)


async def detached_with_writes_held(
    node: Node, redis: RedisServer
) -> tuple[Session, CollectingSink, RedisLog]:
    """A detached session on ``node`` that hangs at token 30, registered in Redis; from
    here on ``node`` takes attaches but writes none of them to Redis (its registry entry
    stays stale until the test lets the writes go)."""
    first_scope, session, sink = start_detached(
        node, "s", max_tokens=60, tokens_per_second=40, hang_at=30
    )
    await first_scope.close()
    await registered(redis, session)
    log = node.manager.resumables.log_of(session)
    assert isinstance(log, RedisLog)
    node.store.held.clear()
    return session, sink, log


async def test_a_token_is_valid_on_another_node_before_its_owner_has_written_it(
    nodes: Nodes,
) -> None:
    """The token reached the client, the owner's first flush has not: a resume on another
    node waits for the entry instead of calling a valid token unauthorized."""
    a, b = await nodes(), await nodes()
    a.store.held.clear()  # A's writer has not flushed since the session started
    _, session, first = start_detached(a, "new")
    assert first.events[0]["data"]["resume_token"] == session.resume_token  # it left
    follower, relayed = resume(b.scope(), session, after_seq=0)
    await asyncio.sleep(0.2)  # B looked, found nothing yet, and keeps looking
    assert follower.live and not relayed.events
    a.store.held.set()
    await follower.accepted()
    await eventually(lambda: ended(relayed))
    assert check_session(first.events[:1] + relayed.events)["reason"] == "complete"


async def test_an_unknown_token_is_refused_without_waiting(
    nodes: Nodes, redis: RedisServer
) -> None:
    a, b = await nodes(), await nodes()
    _, session, _ = start_detached(a, "s", hang_at=1)
    await registered(redis, session)
    for token in (new_token(time.time() - 3600), "not-one-of-ours"):
        request = Resume(session=session.id, resume_token=token, after_seq=0)
        follower = b.scope().resume(request, CollectingSink())
        assert isinstance(follower, Follower)
        async with asyncio.timeout(OP_TIMEOUT_S / 2):
            with pytest.raises(SessionError) as refused:
                await follower.accepted()
        assert refused.value.code == "unauthorized"


async def test_a_relays_late_attach_and_release_do_not_undo_a_resume_on_the_owner(
    nodes: Nodes, redis: RedisServer
) -> None:
    """B resumes and its client leaves at once; B's attach and release reach A only after
    the client has resumed on A itself. The session streams to its end on A."""
    a, b = await nodes(), await nodes()
    first_scope, session, first = start_detached(a, "s", max_tokens=200, tokens_per_second=60)
    await first_scope.close()  # the client went away: detached
    await registered(redis, session)
    b.store.held.clear()  # what B sends A waits in B's writer
    relay_scope = b.scope()
    follower, _ = resume(relay_scope, session, after_seq=0)
    await follower.accepted()
    leaving = asyncio.create_task(relay_scope.close())  # B's client left: B will release
    resumed, back = resume(a.scope(), session, after_seq=0)
    assert resumed is session  # on the owner: the session itself
    await asyncio.wait({leaving}, timeout=0.1)  # its release is queued behind the attach
    b.store.held.set()  # the attach and the release reach A now, late
    await leaving
    await eventually(lambda: ended(back), within=10)
    assert check_session(first.events[:1] + back.events)["reason"] == "complete"


async def test_a_takeover_silences_the_old_relay(nodes: Nodes, redis: RedisServer) -> None:
    """A session of A relayed by B is resumed on C: from C's takeover mark on, B's client
    receives nothing more of it (no event, no stream_end)."""
    a, b, c = await nodes(), await nodes(), await nodes()
    first_scope, session, first = start_detached(a, "s", max_tokens=60, tokens_per_second=60)
    await first_scope.close()
    await registered(redis, session)
    old_relay, old = resume(b.scope(), session, after_seq=0)
    await eventually(lambda: len(old.events) >= 3)
    new_relay, new = resume(c.scope(), session, after_seq=0)
    await eventually(lambda: ended(new))
    assert check_session(first.events[:1] + new.events)["reason"] == "complete"
    await eventually(lambda: not old_relay.live)  # it stopped by itself
    assert not ended(old)
    items = await log_items(redis, session)
    mark = items.index({"attach": 2, "by": new_relay._holder, "ticket": 2})
    before = [item["seq"] for item in items[:mark] if "seq" in item]
    assert seqs(old.events) == list(range(1, len(old.events) + 1))
    assert seqs(old.events)[-1] <= before[-1]  # nothing from after C's takeover mark


async def test_a_late_release_from_an_old_relay_does_not_expire_the_session(
    nodes: Nodes, redis: RedisServer
) -> None:
    """As above, then B's client leaves after C took over: B's release is older than C's
    attach, so A does not restart the detach expiry under C."""
    a = await nodes(grace_s=0.5)
    b, c = await nodes(), await nodes()
    first_scope, session, first = start_detached(a, "s", max_tokens=200, tokens_per_second=60)
    await first_scope.close()
    await registered(redis, session)
    log = a.manager.resumables.log_of(session)
    assert isinstance(log, RedisLog)
    old_scope = b.scope()
    old_relay, _ = resume(old_scope, session, after_seq=0)
    await eventually(lambda: log.holder == old_relay._holder)  # A took B's attach
    new_relay, new = resume(c.scope(), session, after_seq=0)
    await eventually(lambda: log.holder == new_relay._holder)  # and then C's
    await old_scope.close()  # B's release goes out now
    await eventually(lambda: ended(new), within=10)
    assert check_session(first.events[:1] + new.events)["reason"] == "complete"


async def test_a_resume_on_a_third_node_that_read_a_stale_epoch_still_wins(
    nodes: Nodes, redis: RedisServer
) -> None:
    """C resumes A's session after B did, but reads the registry before A has written B's
    takeover (the epoch both saw is 0): C's attach comes from the newer resume, so A takes
    it, B stops at C's mark and C reads to the end."""
    a, b, c = await nodes(), await nodes(), await nodes()
    first_scope, session, first = start_detached(a, "s", max_tokens=60, tokens_per_second=60)
    await first_scope.close()
    await registered(redis, session)
    log = a.manager.resumables.log_of(session)
    assert isinstance(log, RedisLog)
    a.store.held.clear()  # A takes attaches but writes none of them to Redis yet
    old_relay, old = resume(b.scope(), session, after_seq=0)
    await eventually(lambda: log.holder == old_relay._holder)
    new_relay, new = resume(c.scope(), session, after_seq=0)  # it reads epoch 0
    await eventually(lambda: log.holder == new_relay._holder)
    a.store.held.set()
    await eventually(lambda: ended(new))
    assert check_session(first.events[:1] + new.events)["reason"] == "complete"
    await eventually(lambda: not old_relay.live)
    assert not ended(old)


async def test_a_log_that_failed_to_flush_is_deleted_once_redis_answers(
    nodes: Nodes, redis: RedisServer
) -> None:
    """A failed batch drops the log; the deletion it owes fails too while Redis is away,
    and is retried until it is done. A relay following the log ends with node_lost, and
    a resume after the deletion is refused: neither hangs nor skips events."""
    a, b = await nodes(), await nodes()
    first_scope, session, _ = start_detached(a, "s", max_tokens=80, tokens_per_second=40)
    await first_scope.close()
    await registered(redis, session)
    _, relayed = resume(b.scope(), session, after_seq=0)
    await eventually(lambda: len(relayed.events) >= 3)
    a.store.failing = 3  # the next batch, and then two attempts at the deletion, fail
    await eventually(lambda: a.store.counters["logs_dropped"] == 1)

    async def deleted() -> bool:
        return not await redis_keys(redis, session)

    await eventually(deleted)
    assert a.store.failing == 0
    await eventually(lambda: ended(relayed))
    events = relayed.events
    assert seqs(events) == list(range(1, len(events) + 1))  # no gap up to the end
    assert events[-2]["data"]["code"] == "node_lost" and events[-1]["data"]["reason"] == "error"
    follower, _ = resume(b.scope(), session, after_seq=0)
    with pytest.raises(SessionError) as refused:
        await follower.accepted()
    assert refused.value.code == "unauthorized"
    await eventually(lambda: not session.live, within=5)  # A ran it to its end regardless


async def test_a_relay_replaced_on_its_own_node_is_not_ranked_behind_the_one_it_replaced(
    nodes: Nodes, redis: RedisServer
) -> None:
    """B relays A's session (a chat stream GET), then relays it afresh for a newer reader
    on B before A has written the first relay's takeover to the registry. The new relay's
    later ticket ranks it first although it saw the stale epoch (A would have refused it
    as overtaken by the first relay, and it would have stopped at that one's mark): it
    reads on live, and a cancel from B reaches A."""
    a, b = await nodes(), await nodes()
    session, _, log = await detached_with_writes_held(a, redis)
    assert session.resume_token is not None
    key = token_key(session.resume_token)
    old_sink, new_sink = CollectingSink(), CollectingSink()
    found = await b.store.find(session.id, key)
    assert found is not None
    old = b.manager.http.follow(found, old_sink)
    await eventually(lambda: log.epoch == 1)  # A took the first relay's attach
    stale = await b.store.find(session.id, key)
    assert stale is not None and stale.epoch == 0  # the registry does not show it yet
    new = b.manager.http.follow(stale, new_sink)
    a.store.held.set()

    def chunks() -> list[Envelope]:
        return [e for e in new_sink.events if e["type"] == "content_chunk"]

    await eventually(lambda: len(chunks()) == 30)  # every chunk, the mark long passed
    assert not old.live
    assert log.epoch == 2 and log.holder == new._holder  # the newer relay holds it
    assert new.live and b.manager.http.cancel(session.id)
    await eventually(lambda: ended(new_sink))
    assert check_session(new_sink.events)["reason"] == "cancelled"
    assert "".join(e["data"]["content"] for e in chunks()) == session.stream.text()


async def test_two_quick_resumes_on_one_node_from_two_connections_the_newer_reads_on(
    nodes: Nodes, redis: RedisServer
) -> None:
    """Two connections on B resume A's session one after the other (a WebSocket, then an
    EventSource, say) before A has written the first relay's takeover to the registry:
    the second relay reads the old epoch. It is the newer resume, so it reads on to the
    end, and the first relay stops at the second one's takeover mark."""
    a, b = await nodes(), await nodes()
    session, first, log = await detached_with_writes_held(a, redis)
    old_relay, old = resume(b.scope(), session, after_seq=0)
    await eventually(lambda: log.epoch == 1)  # A took the first relay's attach
    new_relay, new = resume(b.scope(), session, after_seq=0)  # another connection on B
    await new_relay.accepted()
    await eventually(lambda: log.epoch == 2)  # A took the newer one's attach too
    a.store.held.set()

    def chunks() -> list[Envelope]:
        return [e for e in new.events if e["type"] == "content_chunk"]

    await eventually(lambda: len(chunks()) == 30)  # every chunk, both marks long passed
    await eventually(lambda: not old_relay.live)  # it stopped by itself, at the new mark
    assert not ended(old)
    assert new_relay.live and new_relay.scope.cancel(session.id)
    await eventually(lambda: ended(new))
    assert check_session(first.events[:1] + new.events)["reason"] == "cancelled"
    assert "".join(e["data"]["content"] for e in chunks()) == session.stream.text()


async def test_a_resume_right_after_a_relay_lost_its_reader_on_the_same_node_reads_on(
    nodes: Nodes, redis: RedisServer
) -> None:
    """B's first relay loses its client (it sends release) and the client comes back to B
    at once, before A has written the first takeover: the new relay is not refused as
    overtaken by the relay it follows, and A keeps the session for it."""
    a = await nodes(grace_s=0.5)
    b = await nodes()
    session, first, log = await detached_with_writes_held(a, redis)
    old_scope = b.scope()
    resume(old_scope, session, after_seq=0)
    await eventually(lambda: log.epoch == 1)
    await old_scope.close()  # its client left: B releases
    await eventually(lambda: log.holder is None)  # A took the release
    new_relay, new = resume(b.scope(), session, after_seq=0)
    await new_relay.accepted()
    await eventually(lambda: log.epoch == 2)
    a.store.held.set()

    def chunks() -> list[Envelope]:
        return [e for e in new.events if e["type"] == "content_chunk"]

    await eventually(lambda: len(chunks()) == 30)
    assert log.holder == new_relay._holder  # A counts it as the session's reader ...
    assert session not in a.manager.resumables._expiry  # ... and no detach expiry runs
    assert session.live and new_relay.live
    assert new_relay.scope.cancel(session.id)
    await eventually(lambda: ended(new))
    assert check_session(first.events[:1] + new.events)["reason"] == "cancelled"


async def test_an_older_sse_session_ending_does_not_hide_a_newer_one_of_its_id(
    nodes: Nodes, redis: RedisServer
) -> None:
    """Two /api/stream sessions with one id, the older on B, the newer on C: the older
    ending leaves ``http:<id>`` naming C, so a cancel on A still reaches the newer one."""
    a, b, c = await nodes(), await nodes(), await nodes()
    client = connect(redis.url)

    async def owner_is(node: Node) -> bool:
        return bool(await client.get("tokenmux:http:h") == node.store.node.encode())

    def start_http(node: Node) -> tuple[Session, CollectingSink]:
        sink = CollectingSink()
        start = Start(
            session="h",
            messages=(Message(role="user", content="prompt"),),
            params={"max_tokens": 40, "tokens_per_second": 40, "hang_at": 5},
        )
        return node.manager.http.start(start, sink), sink

    try:
        older, _ = start_http(b)
        await eventually(lambda: owner_is(b))
        _, newer_sink = start_http(c)
        await eventually(lambda: owner_is(c))
        assert b.manager.http.cancel("h")
        await eventually(lambda: not older.live)
        ended_entry = f"tokenmux:s:{token_key(older.resume_token or '')}"

        async def older_written() -> bool:
            return bool(await client.hget(ended_entry, "state") == b"ended")

        await eventually(older_written)  # the flush that ended it has been written
        assert await owner_is(c)
        assert await a.manager.cancel_remote_http("h") is True
        await eventually(lambda: ended(newer_sink))
        assert check_session(newer_sink.events)["reason"] == "cancelled"
    finally:
        await client.aclose()


async def test_a_second_eventsource_resume_on_a_relaying_node_takes_the_session_over(
    nodes: Nodes, redis: RedisServer
) -> None:
    """Every SSE request of B shares one scope: an EventSource that reconnects before B
    noticed its old connection died resumes again there, and takes the session over from
    the old relay (it is not refused as a duplicate), with A's registry still stale."""
    a, b = await nodes(), await nodes()
    session, first, log = await detached_with_writes_held(a, redis)
    old_relay, old = resume(b.manager.http, session, after_seq=0)
    await eventually(lambda: log.holder == old_relay._holder)
    new_relay, new = resume(b.manager.http, session, after_seq=0)
    await new_relay.accepted()
    await eventually(lambda: not old_relay.live)  # taken over at once, on B
    await eventually(lambda: log.holder == new_relay._holder)
    a.store.held.set()

    def chunks() -> list[Envelope]:
        return [e for e in new.events if e["type"] == "content_chunk"]

    await eventually(lambda: len(chunks()) == 30)
    assert not ended(old)
    assert b.manager.http.cancel(session.id)  # the new relay is the one B's cancel finds
    await eventually(lambda: ended(new))
    assert check_session(first.events[:1] + new.events)["reason"] == "cancelled"
