"""The shared store on Redis: registry entries, replay logs (Streams) and cancel routing.

Per session, under ``store.key_prefix``:

- ``s:<token hash>``: a hash ``{id, node, state, epoch, ticket}``; the resume token itself is never
  stored, in the registry or in the log (``stream_start`` is logged without it).
- ``log:<token hash>``: a Stream, one entry per flushed batch of the session's events and
  takeover marks (``XADD … MAXLEN ~ resume.buffer_events``), so the store costs one
  command per batch, not one per token.
- ``text:<token hash>``: the content so far, for the ``recovered: false`` replay when
  the log was trimmed (written once the log is long enough to be trimmed, then with
  ``APPEND`` per batch).
- ``http:<session id>``: the owner node of an SSE/HTTP session, for the cancel route.
- ``chat:<chat id>``: a hash ``{key, message}`` for a detached ``/api/chat`` answer: its
  token hash and message id, so any node can resume it by the chat id alone.

All of these expire ``resume.grace_s`` after the session ended or its node stopped
refreshing them. Per node: ``node:<id>``, a heartbeat that expires after three missed
beats, and the pub/sub channel ``ctl:<id>`` on which other nodes send cancel, attach and
release.

Three tasks, owned here and stopped by ``aclose()``: the writer (flushes whatever was
logged while its previous round trip was in flight, as one pipeline), the heartbeat
(which also notices that Redis is back), and the control subscriber.

When Redis is unreachable nothing fails that does not need it: new sessions stream
without a shared log (resume still works on their own node), logs whose batch could not
be written are dropped (never resumed with a gap; their keys are deleted as soon as Redis
answers again, retried until it does), and ``health()`` says so.

Ordering (docs/scale-out.md): the registry entry of a token is written in the first flush
after the session starts, and a node that does not find a token issued less than
``2 * op_timeout_s`` ago waits for it; takeovers are numbered (``epoch``) by the owner and
recorded in the log at the point where each happened; a relay also takes a ``ticket``
from the entry (one counter in Redis, so tickets follow the order in which relays on any
node asked), and the owner accepts its attach only if no resume on the owner happened
after the epoch it saw and no relay with a later ticket attached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, Literal

import orjson
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from server.config import StoreConfig
from server.errors import ErrorCode, TokenmuxError
from server.protocol.envelope import Envelope
from server.sessions.store.base import ENDED, ChatAnswer, Control, EventLog, RemoteSession
from server.sessions.store.replay import (
    Keys,
    LogReader,
    attach_mark,
    decode_control,
    encode_batch,
    shareable,
)

__all__ = ["RedisLog", "RedisStore", "connect"]

logger = logging.getLogger(__name__)

try:  # redis-py >= 7 reads its own version from disk per new connection unless told it
    from redis.driver_info import DriverInfo
    from redis.utils import get_lib_version

    _VERSION: str = get_lib_version()  # type: ignore[no-untyped-call]
    _CLIENT_OPTIONS: dict[str, Any] = {"driver_info": DriverInfo(lib_version=_VERSION)}
except ImportError:  # pragma: no cover - older redis-py resolves it once, at import
    _CLIENT_OPTIONS = {}


def connect(url: str, **options: Any) -> Any:
    """An asyncio Redis client for ``url`` that does no blocking I/O in the event loop.

    It never retries by itself: every caller bounds its round trip (op_timeout_s) and
    knows what a failure means, and redis-py's retry would also resend a read that was
    cancelled (a relay whose client left would block once more before it stops)."""
    return aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **_CLIENT_OPTIONS, **options)


# A relay's takeover ticket: one counter per registry entry, never for an entry that is
# gone (HINCRBY would create it without an expiry).
_NEXT_TICKET = """
if redis.call('HEXISTS', KEYS[1], 'node') == 0 then return false end
return redis.call('HINCRBY', KEYS[1], 'ticket', 1)
"""

# An SSE/HTTP session ended: mark its id ended only if the id still names this node (or
# nothing), never over a newer session of the same id on another node.
_END_HTTP = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

FAILURES = (RedisError, OSError, TimeoutError)
READ_COUNT = 512  # log entries per XREAD/XRANGE reply
FIRST_POLL_S = 0.005  # waiting for a new token's entry: polls double from this
LOCAL = "local"  # the holder named by a resume on the owning node itself


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _honour_cancel() -> None:
    """Raise CancelledError if this task was cancelled. redis-py can swallow a cancel that
    lands while it takes a pooled connection; a reader then checks after each reply."""
    if _cancelling():
        raise asyncio.CancelledError


class RedisLog:
    """One session's shared log: events wait here until the writer's next flush."""

    def __init__(self, store: RedisStore, session_id: str, key: str, *, http: bool) -> None:
        self.store = store
        self.session_id = session_id
        self.key = key
        self.http = http
        self.pending: list[Envelope] = []
        self.registered = False
        self.state: str | None = "live"  # a state change not written yet
        self.closed = False
        self.broken = False
        self.refreshed = 0.0  # monotonic time of the last expiry refresh
        self.batches = 0
        self.epoch = 0  # the newest takeover; written to the entry after its mark
        self.holder: str | None = None  # who reads the session since that takeover
        self.local_epoch = 0  # the newest takeover by a resume on this node
        self.ticket = 0  # the newest relay's ticket (SessionStore.ticket)
        self.epoch_written = True
        self.chat: str | None = None  # the message id of a detached /api/chat answer
        self.chat_written = True
        # The text key only matters once MAXLEN may trim the log; until then the text is
        # kept here and written in one APPEND when the log reaches that length.
        self.early_text: list[str] | None = []

    def append(self, envelope: Envelope) -> None:
        if not self.broken:
            self.pending.append(shareable(envelope))
            self.store.dirty(self)

    def holds(self, envelope: Envelope) -> bool:
        return bool(self.pending) and self.pending[-1] is envelope

    def replace(self, newest: Envelope, merged: Envelope) -> None:
        if self.holds(newest):
            self.pending[-1] = merged

    def detached(self) -> None:
        if not self.closed:
            self.state = "detached"
            self.store.dirty(self)

    def attach(self, basis: int, holder: str, ticket: int) -> bool:
        if basis < self.local_epoch or ticket <= self.ticket:
            # Resumed here after the sender looked, or by a relay that asked for its ticket
            # later: the sender's client is the older one.
            return False
        self.ticket = ticket
        self._new_epoch(holder, ticket)
        return True

    def release(self, holder: str) -> bool:
        if self.holder != holder:
            return False
        self.holder = None
        return True

    def take_over(self) -> None:
        self.local_epoch = self.epoch + 1
        self._new_epoch(LOCAL)

    def index_chat(self, message_id: str) -> None:
        self.chat = message_id
        self.chat_written = False
        self.store.dirty(self)

    def _new_epoch(self, holder: str, ticket: int | None = None) -> None:
        self.epoch += 1
        self.holder = holder
        if not self.broken:
            self.pending.append(attach_mark(self.epoch, holder, ticket))
            self.epoch_written = False
            self.store.dirty(self)

    def write(self, pipe: Any, keys: Keys, ttl_s: int, cap: int, now: float) -> int:
        """Queue this log's pending work on ``pipe``; return how many events it carries.

        Events are encoded here, at flush time: a chunk merged under backpressure until now
        is written as merged, and once written it no longer holds() for further merging."""
        entry = keys.entry(self.key)
        if not self.registered:
            self.registered = True
            pipe.hset(entry, mapping={"id": self.session_id, "node": self.store.node})
            if self.http:
                pipe.set(keys.http(self.session_id), self.store.node, ex=ttl_s)
        if not self.chat_written:  # after the entry: whoever finds the index finds it too
            self.chat_written = True
            index = {"key": self.key, "message": self.chat}
            pipe.hset(keys.chat(self.session_id), mapping=index)
            pipe.expire(keys.chat(self.session_id), ttl_s)
        if self.state is not None:
            pipe.hset(entry, "state", self.state)
            if self.http and self.state == "ended":
                # Unless a newer session with this id, on another node, has it by now.
                args = (self.store.node, ENDED, ttl_s)
                pipe.eval(_END_HTTP, 1, keys.http(self.session_id), *args)
            self.state = None
        events, self.pending = self.pending, []
        if events:
            data, text = encode_batch(events)
            pipe.xadd(keys.log(self.key), {"e": data}, maxlen=cap, approximate=True)
            if not self.epoch_written:  # after its mark: a reader of this epoch finds it
                self.epoch_written = True
                pipe.hset(entry, "epoch", self.epoch)
            self.batches += 1
            if self.early_text is not None:
                self.early_text.append(text)
                if self.batches >= cap:  # from the next XADD on, entries may be trimmed
                    text, self.early_text = "".join(self.early_text), None
                else:
                    text = ""
            if text:
                pipe.append(keys.text(self.key), text)
        if self.closed or now - self.refreshed >= ttl_s / 3:
            self.refreshed = now
            for name in (entry, keys.log(self.key), keys.text(self.key)):
                pipe.expire(name, ttl_s)
            if self.http:
                pipe.expire(keys.http(self.session_id), ttl_s)
            if self.chat is not None:
                pipe.expire(keys.chat(self.session_id), ttl_s)
        return sum("attach" not in event for event in events)


class RedisStore:
    """SessionStore on Redis (see the module docstring)."""

    distributed = True

    def __init__(self, config: StoreConfig, *, grace_s: float, buffer_events: int) -> None:
        self.config = config
        self.node = secrets.token_hex(8)
        self.keys = Keys(config.key_prefix)
        self._ttl_s = max(1, round(grace_s))
        self._cap = buffer_events
        self._block_ms = max(50, round(min(config.heartbeat_s, config.op_timeout_s) * 1000))
        # Any: the client's replies are typed as unions of every RESP shape.
        self._redis: Any = connect(
            config.url, socket_connect_timeout=config.op_timeout_s, health_check_interval=0
        )
        self._next_ticket = self._redis.register_script(_NEXT_TICKET)
        self._dirty: dict[RedisLog, None] = {}
        self._live: set[RedisLog] = set()
        self._controls: list[tuple[str, Control]] = []
        self._forget: list[RedisLog] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._on_control: Callable[[Control], None] = lambda _: None
        self.healthy = True  # optimistic until the first heartbeat says otherwise
        self.counters = {
            "ops": 0,  # Redis commands sent by the writer, heartbeat and readers
            "round_trips": 0,
            "events_logged": 0,
            "batches": 0,
            "errors": 0,
            "sessions_shared": 0,
            "sessions_unshared": 0,  # started while Redis was down: resumable here only
            "logs_dropped": 0,  # a batch failed: the log is dropped rather than gapped
        }

    # Lifecycle.

    async def start(self, on_control: Callable[[Control], None]) -> None:
        self._on_control = on_control
        await self._beat()  # know at once whether Redis is there; never raises
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._write_loop(), name="store writer"),
            loop.create_task(self._heartbeat_loop(), name="store heartbeat"),
            loop.create_task(self._control_loop(), name="store control"),
        ]
        logger.info("session store: redis, node %s", self.node)

    async def aclose(self) -> None:
        """Write what is pending (the writer's last flush, bounded), then stop."""
        for task in self._tasks[1:]:
            task.cancel()
        self._closing = True
        self._wake.set()
        if self._tasks:
            writer = self._tasks[0]
            await asyncio.wait({writer}, timeout=2 * self.config.op_timeout_s)
            writer.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.healthy:
            with contextlib.suppress(*FAILURES):
                async with asyncio.timeout(self.config.op_timeout_s):
                    await self._redis.delete(self.keys.node(self.node))
        await self._redis.aclose()

    # Writing (called synchronously by sessions and the manager).

    def open_log(self, session_id: str, key: str, *, http: bool) -> EventLog | None:
        if not self.healthy:
            self.counters["sessions_unshared"] += 1
            return None
        self.counters["sessions_shared"] += 1
        log = RedisLog(self, session_id, key, http=http)
        self._live.add(log)
        return log

    def close_log(self, log: EventLog) -> None:
        assert isinstance(log, RedisLog)
        log.closed = True
        log.state = "ended"
        self._live.discard(log)
        self.dirty(log)

    def dirty(self, log: RedisLog) -> None:
        self._dirty[log] = None
        self._wake.set()

    def send_control(self, node: str, control: Control) -> None:
        self._controls.append((node, control))
        self._wake.set()

    # Reading.

    async def find(
        self, session_id: str, key: str, *, issued_s: float | None = None
    ) -> RemoteSession | None:
        # The owner registers a token in its first flush after the session started; that
        # flush may wait behind one in flight, and each is bounded by op_timeout_s. Until
        # then a token that new is not unknown, just not written yet.
        now = time.time()
        window = 2 * self.config.op_timeout_s
        wait_until = now + window if issued_s is None else min(issued_s + window, now + window)
        pause = FIRST_POLL_S
        try:
            while True:
                async with asyncio.timeout(self.config.op_timeout_s):
                    raw = await self._redis.hgetall(self.keys.entry(key))
                self._count(1)
                _honour_cancel()
                if raw or issued_s is None or time.time() + pause > wait_until:
                    break
                await asyncio.sleep(pause)
                pause *= 2
            entry = {k.decode(): v.decode() for k, v in raw.items()}
            if entry.get("id") != session_id or "node" not in entry:
                return None
            async with asyncio.timeout(self.config.op_timeout_s):
                alive = bool(await self._redis.exists(self.keys.node(entry["node"])))
            self._count(1)
        except FAILURES as exc:
            self._failed(exc)
            raise TokenmuxError(
                "the session store is unavailable; try again", code=ErrorCode.INTERNAL
            ) from None
        return RemoteSession(
            session_id=session_id,
            key=key,
            node=entry["node"],
            ended=entry.get("state") == "ended",
            owner_alive=alive,
            epoch=int(entry.get("epoch", 0)),
        )

    async def ticket(self, remote: RemoteSession) -> int | None:
        try:
            async with asyncio.timeout(self.config.op_timeout_s):
                ticket = await self._next_ticket(keys=[self.keys.entry(remote.key)])
            self._count(1)
        except FAILURES as exc:
            self._failed(exc)
            return None
        return None if ticket is None else int(ticket)

    async def events(
        self,
        remote: RemoteSession,
        after_seq: int,
        holder: str | None = None,
        ticket: int | None = None,
    ) -> AsyncGenerator[Envelope, None]:
        reader = LogReader(
            remote.session_id,
            after_seq,
            clock_ms=int(time.time() * 1000),
            epoch=remote.epoch,
            holder=holder,
            ticket=ticket,
        )
        log_key = self.keys.log(remote.key)
        try:
            async with asyncio.timeout(self.config.op_timeout_s):
                pipe = self._redis.pipeline(transaction=False)
                pipe.xrange(log_key, "-", "+")
                pipe.get(self.keys.text(remote.key))
                entries, text = await pipe.execute()
                self._count(2)
            _honour_cancel()
            last_id = entries[-1][0] if entries else b"0-0"
            for event in reader.feed([e[1][b"e"] for e in entries], (text or b"").decode()):
                yield event
            if not reader.done and not remote.owner_alive:
                for event in reader.node_lost():
                    yield event
            while not reader.done:
                async with asyncio.timeout(self.config.op_timeout_s + self._block_ms / 1000):
                    reply = await self._redis.xread(
                        {log_key: last_id}, count=READ_COUNT, block=self._block_ms
                    )
                self._count(1)
                _honour_cancel()
                if reply:
                    entries = reply[0][1]
                    last_id = entries[-1][0]
                    for event in reader.feed([e[1][b"e"] for e in entries]):
                        yield event
                elif (lost := await self._why_lost(remote)) is not None:
                    # One more read: what the owner wrote just before dying still counts.
                    async with asyncio.timeout(self.config.op_timeout_s):
                        reply = await self._redis.xread({log_key: last_id}, count=READ_COUNT)
                    for _, entries in reply or []:
                        for event in reader.feed([e[1][b"e"] for e in entries]):
                            yield event
                    if not reader.done:
                        for event in reader.node_lost(lost):
                            yield event
        except FAILURES as exc:
            if _cancelling():  # redis-py turns a cancelled read into a ConnectionError
                raise asyncio.CancelledError from None
            # Redis went away while following: the client learns it, like a lost node.
            self._failed(exc)
            if not reader.done:
                for event in reader.node_lost():
                    yield event

    async def _why_lost(self, remote: RemoteSession) -> str | None:
        """None while the owner still writes this log (or has ended it); else why not."""
        async with asyncio.timeout(self.config.op_timeout_s):
            pipe = self._redis.pipeline(transaction=False)
            pipe.exists(self.keys.node(remote.node))
            pipe.hget(self.keys.entry(remote.key), "state")
            alive, state = await pipe.execute()
        self._count(2)
        if state == b"ended":
            return None
        if state is None:  # the owner deleted it: a batch of it could not be written
            return "the shared log of this session was lost while the store was unavailable"
        return None if alive else "the node running this session was lost"

    async def owner_of_http(self, session_id: str) -> str | None:
        try:
            async with asyncio.timeout(self.config.op_timeout_s):
                node = await self._redis.get(self.keys.http(session_id))
            self._count(1)
        except FAILURES as exc:
            self._failed(exc)
            return None
        return node.decode() if node else None

    async def chat_answer(self, chat_id: str) -> ChatAnswer | None:
        try:
            async with asyncio.timeout(self.config.op_timeout_s):
                raw = await self._redis.hgetall(self.keys.chat(chat_id))
            self._count(1)
        except FAILURES as exc:
            self._failed(exc)
            raise TokenmuxError(
                "the session store is unavailable; try again", code=ErrorCode.INTERNAL
            ) from None
        if b"key" not in raw or b"message" not in raw:
            return None
        return ChatAnswer(key=raw[b"key"].decode(), message_id=raw[b"message"].decode())

    def health(self) -> dict[str, Any]:
        return {
            "type": "redis",
            "node": self.node,
            "healthy": self.healthy,
            "live_logs": len(self._live),
            **self.counters,
        }

    # Background tasks.

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
            except FAILURES as exc:
                self._failed(exc)
            if self._closing and not (self._dirty or self._controls):
                return

    async def _flush(self) -> None:
        """Write everything logged since the last flush as one pipeline (one round trip)."""
        logs, self._dirty = list(self._dirty), {}
        controls, self._controls = self._controls, []
        forget, self._forget = self._forget, []
        if not (logs or controls or forget):
            return
        pipe = self._redis.pipeline(transaction=False)
        now = time.monotonic()
        events = 0
        for log in logs:
            if not log.broken:
                events += log.write(pipe, self.keys, self._ttl_s, self._cap, now)
        for node, control in controls:
            message: dict[str, str | int] = {
                "op": control.op,
                "key": control.key,
                "scope": control.scope,
            }
            if control.holder:
                message.update(basis=control.basis, holder=control.holder, ticket=control.ticket)
            pipe.publish(self.keys.control(node), orjson.dumps(message))
        for log in forget:
            pipe.delete(self.keys.entry(log.key), self.keys.log(log.key), self.keys.text(log.key))
        commands = len(pipe)
        try:
            await self._execute(pipe)
        except FAILURES:
            self._forget.extend(forget)  # still owed: retried once Redis answers again
            for log in logs:
                if not log.broken:
                    # Its batch is lost: drop the log rather than let a resume skip it.
                    log.broken = True
                    log.pending.clear()
                    self._live.discard(log)
                    self._forget.append(log)
                    self.counters["logs_dropped"] += 1
            raise
        self._count(commands)
        self.counters["events_logged"] += events
        self.counters["batches"] += 1

    async def _execute(self, pipe: Any) -> None:
        """One flush's round trip (a seam: tests hold or fail it to order nodes' messages)."""
        async with asyncio.timeout(self.config.op_timeout_s):
            await pipe.execute()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            await self._beat()
            now = time.monotonic()
            for log in self._live:
                if now - log.refreshed >= self._ttl_s / 3:
                    self.dirty(log)  # keep a quiet live session's keys from expiring
            if self._forget:
                self._wake.set()

    async def _beat(self) -> None:
        try:
            async with asyncio.timeout(self.config.op_timeout_s):
                if not self.healthy:
                    # Pooled connections from before the outage are dead: start afresh.
                    await self._redis.connection_pool.disconnect(inuse_connections=False)
                ttl_ms = round(self.config.heartbeat_s * 3000)
                await self._redis.set(self.keys.node(self.node), b"1", px=ttl_ms)
            self._count(1)
        except FAILURES as exc:
            self._failed(exc)
        else:
            if not self.healthy:
                self.healthy = True
                logger.warning("session store: redis is back; new sessions are shared again")

    async def _control_loop(self) -> None:
        channel = self.keys.control(self.node)
        while True:
            pubsub: Any = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None and message["type"] == "message":
                        self._deliver(message["data"])
            except FAILURES as exc:
                self._failed(exc)
            finally:
                with contextlib.suppress(*FAILURES):
                    await pubsub.aclose()
            await asyncio.sleep(self.config.heartbeat_s)  # back off before resubscribing

    def _deliver(self, raw: bytes) -> None:
        obj = decode_control(raw)
        if obj is None or obj["op"] not in ("cancel", "attach", "release"):
            logger.warning("session store: ignoring a malformed control message")
            return
        http = obj.get("scope") == "http"
        basis, holder, ticket = obj.get("basis", 0), obj.get("holder", ""), obj.get("ticket", 0)
        if not (isinstance(basis, int) and isinstance(holder, str) and isinstance(ticket, int)):
            logger.warning("session store: ignoring a malformed control message")
            return
        scope: Literal["token", "http"] = "http" if http else "token"
        self._on_control(Control(obj["op"], obj["key"], scope, basis, holder, ticket))

    # Health.

    def _count(self, ops: int) -> None:
        self.counters["ops"] += ops
        self.counters["round_trips"] += 1

    def _failed(self, exc: BaseException) -> None:
        self.counters["errors"] += 1
        if self.healthy:
            self.healthy = False
            logger.warning(
                "session store: redis unavailable (%r); sessions stream on, but new ones "
                "are resumable on this node only until it is back",
                exc,
            )
