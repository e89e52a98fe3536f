"""SessionManager: the only code that creates, cancels and awaits session tasks.

Each transport connection gets a SessionScope (its registry of live sessions and its
limits); all SSE requests share one scope so ``POST /api/sessions/{id}/cancel`` can find
them, and sessions whose transport went away wait in the ``detached`` scope. Every task has
an owner: its scope cancels and awaits it on ``close()``, and the manager does the same for
every scope on ``shutdown()``.

Resume (PROTOCOL.md §6): with ``resume.enabled``, a session started with
``on_disconnect: "detach"`` gets an unguessable token and a replay buffer (their
bookkeeping is server/sessions/resume.py). It stays resumable for ``resume.grace_s``
after it detached or ended; a detached session nobody resumes in that time is cancelled.

With a shared store (``store.type: redis``, server/sessions/store/) the registry entry and
the events of each resumable session are also written there, so another node can resume
it (as a Follower, which reads the shared log) and route ``cancel`` to this node; this
node's own resume path stays the in-memory one. Takeovers are numbered by the session's
log (``EventLog.attach``): an attach or release from another node that a newer takeover
has overtaken changes nothing here.

Call order: ``start()`` after ``shutdown()`` began raises SessionError(shutting_down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Union

from server.config import LimitsConfig, ResumeConfig
from server.errors import ErrorCode, SessionError, TokenmuxError
from server.protocol.envelope import Resume, Start, Watch
from server.protocol.stream import EndReason
from server.providers.registry import ProviderRegistry
from server.sessions.follower import Follower
from server.sessions.live import Live
from server.sessions.outbox import DetachedSink, Outbox, Sink
from server.sessions.readers import ReaderSink
from server.sessions.resume import Resumables
from server.sessions.session import Session
from server.sessions.store import ENDED, Control, MemoryStore, RemoteSession, SessionStore

__all__ = ["SessionManager", "SessionScope"]

logger = logging.getLogger(__name__)

REMEMBERED_ENDED_IDS = 4096  # per scope: ids whose late `cancel` is accepted silently

Resumed = Union[Session, Follower]  # noqa: UP007 - a runtime alias


class SessionScope:
    """The live sessions of one connection (or of all SSE requests, or of detached ones)."""

    def __init__(self, manager: SessionManager, *, max_sessions: int | None) -> None:
        self._manager = manager
        self._max_sessions = max_sessions
        self._live: dict[str, Session] = {}
        self._followers: dict[str, Follower] = {}
        self._watches: dict[str, tuple[Session, ReaderSink]] = {}  # watched here, run elsewhere
        self._ended: OrderedDict[str, None] = OrderedDict()
        self.closed = False

    def __len__(self) -> int:
        return len(self._live) + len(self._followers) + len(self._watches)

    def start(self, start: Start, sink: Sink) -> Session:
        """Register and launch a session. Raises SessionError for every refusal."""
        if self.closed or self._manager.shutting_down:
            raise SessionError("the server is shutting down", code=ErrorCode.SHUTTING_DOWN)
        self._check_room(start.session)
        session = self._manager.create_session(start, sink, http=self is self._manager.http)
        self.adopt(session)
        session.open()
        self._manager.launch(session)
        return session

    def cancel(self, session_id: str, reason: EndReason = "cancelled") -> bool:
        """Cancel a live session: True. Already ended: False. Never started: SessionError."""
        session: Live | None = self._live.get(session_id) or self._followers.get(session_id)
        if session is None and session_id in self._watches:
            session = self._watches[session_id][0]  # a reader holding the token may cancel
        if session is None:
            if session_id in self._ended:
                return False
            raise SessionError(
                f"no session {session_id!r} on this connection", code=ErrorCode.SESSION_NOT_FOUND
            )
        session.cancel(reason)
        return True

    def stop(self, session: Session, reason: EndReason = "cancelled") -> None:
        """Cancel ``session`` if it is still live here (never a newer session with its id)."""
        if self._live.get(session.id) is session:
            session.cancel(reason)

    def abandon(self, session: Live, reason: EndReason = "cancelled") -> None:
        """The transport of ``session`` went away (``cancelled``) or failed (``error``):
        detach it if it asked for that (and resume is on), otherwise end it with
        ``reason``. A follower just stops following."""
        follower = self._followers.get(session.id)
        if follower is session:
            follower.cancel_following()
            return
        held = self._live.get(session.id)
        if held is not session:
            return
        if self._manager.may_detach(held) and not self._manager.shutting_down:
            self._manager.detach(held)
        else:
            held.cancel(reason)

    async def wait(self, session: Live) -> None:
        """Wait until ``session`` has ended (at once if it already has)."""
        if session.task is not None:
            # asyncio.wait neither cancels the task when we are cancelled nor raises its
            # outcome (a task cancelled before its first step ends "cancelled").
            await asyncio.wait({session.task})

    def resume(
        self,
        request: Resume,
        sink: Sink,
        on_refused: Callable[[TokenmuxError], None] | None = None,
    ) -> Resumed:
        """Attach a resumable session here: replay what ``request.after_seq`` missed, then
        continue live. Raises SessionError(unauthorized) unless the token matches.

        With a shared store, a session this node does not know may run on another node:
        then a Follower is returned at once, and a refusal found by its lookup is passed
        to ``on_refused`` (and raised by ``Follower.accepted()``)."""
        try:
            session = self._manager.find_resumable(request.session, request.resume_token)
        except SessionError:
            if not self._manager.store.distributed:
                raise
            old = self._followers.get(request.session)
            if self is self._manager.http and old is not None and old.resumed_by(request):
                # The HTTP routes share this scope: a second EventSource resume takes the
                # session over from the first, as it would on the node running it.
                old.cancel_following()
                self._unfollow(old)
            return self._follow(request, sink, on_refused)
        if self._live.get(session.id, session) is not session:
            # Two lives under one id on one socket could not be told apart by the client.
            raise SessionError(
                f"session {session.id!r} is live here already", code=ErrorCode.DUPLICATE_SESSION
            )
        if session.live and session.scope is not self:
            self._check_room(session.id)
            session.scope.let_go(session)  # a takeover: the old socket may be dead
            self.adopt(session)
        if session.live:
            self._manager.took_over(session)  # relays on other nodes stop
        self._manager.replay(session, request.after_seq, sink)
        return session

    def watch(
        self,
        request: Watch,
        outbox: Outbox,
        on_refused: Callable[[TokenmuxError], None] | None = None,
    ) -> Resumed:
        """Read a session as one more reader (PROTOCOL.md §12): the events after
        ``request.after_seq``, then the live rest, without taking it over. Refused as
        ``resume`` is; on another node's session a Follower reads its log."""
        resume = Resume(request.session, request.resume_token, request.after_seq)
        try:
            session = self._manager.find_resumable(request.session, request.resume_token)
        except SessionError:
            if not self._manager.store.distributed:
                raise
            return self._follow(resume, outbox, on_refused, watching=True)
        self._check_room(session.id)
        reader = ReaderSink(outbox, lambda: self._end_watch(session, reader))
        if session.live:
            self._watches[session.id] = (session, reader)
            self._ended.pop(session.id, None)
        self._manager.watch(session, request.after_seq, reader)
        return session

    @property
    def readers(self) -> int:
        """Sessions this connection watches (here or, relayed, on another node)."""
        return len(self._watches) + sum(f.watching for f in self._followers.values())

    def watching(self, session_id: str) -> bool:
        """True while this connection reads ``session_id`` as a ``watch``."""
        follower = self._followers.get(session_id)
        return session_id in self._watches or (follower is not None and follower.watching)

    def unwatch(self, session_id: str) -> None:
        """Stop reading a watched session here; it goes on for its other readers."""
        follower = self._followers.get(session_id)
        if follower is not None and follower.watching:
            follower.cancel_following()
            return
        watched = self._watches.get(session_id)
        if watched is not None:
            self._end_watch(*watched)
        elif session_id not in self._ended:
            raise SessionError(
                f"no watched session {session_id!r} on this connection",
                code=ErrorCode.SESSION_NOT_FOUND,
            )

    def follow(self, remote: RemoteSession, sink: Sink) -> Follower:
        """Relay ``remote`` from its first event: a session of another node that a route
        found and authorized without its token (a chat id). Like a resume, this takes the
        session over from a follower of it here (not from a reader)."""
        if self.closed or self._manager.shutting_down:  # before the old one is let go
            raise SessionError("the server is shutting down", code=ErrorCode.SHUTTING_DOWN)
        old = self._followers.get(remote.session_id)
        if old is not None and not old.watching:
            old.cancel_following()  # its release cannot touch the newer attach (by name)
            self._unfollow(old)
        request = Resume(session=remote.session_id, resume_token="", after_seq=-1)
        return self._follow(request, sink, None, found=remote)

    async def close(self, reason: EndReason = "cancelled") -> None:
        """End this scope: detach sessions that asked for it, cancel and await the rest.

        ``reason`` is why the transport ended: ``cancelled`` (it went away) or ``error`` (it
        failed; sessions that are not detached end with ``stream_end{error}``); sessions are
        detached in both cases. On ``shutdown`` none is. Sessions it only watched go on
        without this reader."""
        self.closed = True
        for watched in list(self._watches.values()):
            self._end_watch(*watched)
        cancelled = []
        for follower in list(self._followers.values()):
            follower.cancel_following()
            cancelled.append(follower.task)
        for session in list(self._live.values()):
            if reason in ("cancelled", "error") and self._manager.may_detach(session):
                self._manager.detach(session)
            else:
                session.cancel(reason)
                cancelled.append(session.task)
        try:
            if cancelled:
                await asyncio.wait([task for task in cancelled if task is not None])
        finally:
            self._manager.scopes.discard(self)

    # Private methods.

    def _follow(
        self,
        request: Resume,
        sink: Sink,
        on_refused: Callable[[TokenmuxError], None] | None,
        *,
        watching: bool = False,
        found: RemoteSession | None = None,
    ) -> Follower:
        if self.closed or self._manager.shutting_down:
            raise SessionError("the server is shutting down", code=ErrorCode.SHUTTING_DOWN)
        self._check_room(request.session)
        follower = Follower(
            self._manager.store,
            request,
            sink,
            self,
            on_refused,
            watching=watching,
            found=found,
        )
        self._followers[follower.id] = follower
        self._ended.pop(follower.id, None)
        follower.task = asyncio.create_task(follower.run(), name=f"follower {follower.id}")
        follower.task.add_done_callback(lambda _: self._unfollow(follower))
        return follower

    def _unfollow(self, follower: Follower) -> None:
        if self._followers.get(follower.id) is follower:
            del self._followers[follower.id]
            # A relay that stopped before the end (its reader left, or was taken over)
            # says nothing of the session, which may run on: a cancel asks its node.
            if follower.relayed_end or follower.watching:
                self._ended[follower.id] = None

    def _end_watch(self, session: Session, reader: ReaderSink) -> None:
        """The reader leaves (unwatch, its connection closed, or the session ended)."""
        session.remove_reader(reader)
        if self._watches.get(session.id, (None, None))[1] is reader:
            del self._watches[session.id]
            self._ended[session.id] = None

    def _check_room(self, session_id: str) -> None:
        if session_id in self._live or session_id in self._followers or session_id in self._watches:
            raise SessionError(
                f"session {session_id!r} is still live", code=ErrorCode.DUPLICATE_SESSION
            )
        if self._max_sessions is not None and len(self) >= self._max_sessions:
            raise SessionError(
                f"at most {self._max_sessions} live sessions per connection",
                code=ErrorCode.TOO_MANY_SESSIONS,
            )

    # Used by the manager and by the scopes a session moves between.

    def adopt(self, session: Session) -> None:
        """Hold ``session`` here from now on (it started here, was resumed or detached)."""
        self._live[session.id] = session
        self._ended.pop(session.id, None)
        session.scope = self

    def let_go(self, session: Live) -> None:
        """``session`` moves to another scope: forget it here without ending it."""
        if self._live.get(session.id) is session:
            del self._live[session.id]

    def release(self, session: Live) -> None:
        """``session`` ended: forget it, but accept a late ``cancel`` of its id silently."""
        self.let_go(session)
        self._ended[session.id] = None
        if len(self._ended) > REMEMBERED_ENDED_IDS:
            self._ended.popitem(last=False)


class SessionManager:
    """Owns every scope and, through them, every session task of the server."""

    def __init__(
        self,
        providers: ProviderRegistry,
        *,
        limits: LimitsConfig | None = None,
        resume: ResumeConfig | None = None,
        clock: Callable[[], float] = time.time,
        store: SessionStore | None = None,
    ) -> None:
        self.providers = providers
        self.store: SessionStore = store or MemoryStore()
        self.clock = clock
        self.limits = limits or LimitsConfig()
        self.resume = resume or ResumeConfig(enabled=False)
        self.scopes: set[SessionScope] = set()
        self.shutting_down = False
        self._end_listeners: list[Callable[[Session], None]] = []
        self.resumables = Resumables(self.resume, self.store, clock, self._expired)
        self._http_sessions: dict[str, Session] = {}  # started over HTTP, detached or not
        self._idle = asyncio.Event()
        self._idle.set()
        self._running = 0
        self._launched: dict[asyncio.Task[None], Session] = {}  # live tasks, to their session
        self.http = self.open_scope(max_sessions=None)
        self.detached = self.open_scope(max_sessions=None)

    @property
    def live_sessions(self) -> int:
        return self._running

    @property
    def readers(self) -> int:
        """Readers (``watch``) attached on this node now."""
        return sum(scope.readers for scope in self.scopes)

    def open_scope(self, *, max_sessions: int | None = -1) -> SessionScope:
        """A new registry for one connection (-1: the configured per-connection limit)."""
        limit = self.limits.max_sessions_per_connection if max_sessions == -1 else max_sessions
        scope = SessionScope(self, max_sessions=limit)
        self.scopes.add(scope)
        return scope

    def on_session_end(self, listener: Callable[[Session], None]) -> None:
        """Call ``listener(session)`` whenever a session's task has finished."""
        self._end_listeners.append(listener)

    async def shutdown(self, *, drain_s: float = 0.0) -> None:
        """Refuse new sessions; let live ones finish for ``drain_s``; end the rest with
        ``stream_end{reason: shutdown}``; forget every resumable session."""
        self.shutting_down = True
        if drain_s > 0 and self._running:
            try:
                async with asyncio.timeout(drain_s):
                    await self._idle.wait()
            except TimeoutError:
                logger.info("drain over with %d sessions live: ending them", self._running)
        await asyncio.gather(*(scope.close("shutdown") for scope in list(self.scopes)))
        self.resumables.clear()

    # Used by SessionScope.

    def create_session(self, start: Start, sink: Sink, *, http: bool = False) -> Session:
        provider = self.providers.get(start.provider)
        detach = start.on_disconnect == "detach"
        token, log, sink = self.resumables.issue(start.session, sink, detach=detach, http=http)
        session = Session(
            start,
            provider,
            sink,
            resume_token=token,
            clock=self.clock,
            max_duration_s=self.limits.max_session_s or None,
        )
        self.resumables.register(session, log)
        if http:
            self._http_sessions[session.id] = session
        return session

    def launch(self, session: Session) -> None:
        self._running += 1
        self._idle.clear()
        task = session.task = asyncio.create_task(session.run(), name=f"session {session.id}")
        # One bound method for every task and a dict entry each, not a closure per session.
        self._launched[task] = session
        task.add_done_callback(self._on_task_done)

    def may_detach(self, session: Session) -> bool:
        return self.resume.enabled and session.start.on_disconnect == "detach"

    def detach(self, session: Session) -> None:
        """The transport went away: keep the session running, unseen, for the grace period."""
        session.scope.let_go(session)
        self.detached.adopt(session)
        session.retarget(DetachedSink())
        self.resumables.expire_later(session)
        log = self.resumables.log_of(session)
        if log is not None:
            log.detached()
        logger.info("session %s detached; resumable for %.0fs", session.id, self.resume.grace_s)

    def index_chat(self, session: Session, message_id: str) -> None:
        """``session`` is a detachable /api/chat answer: with a shared store, other nodes
        find it by its chat id (``SessionStore.chat_answer``)."""
        log = self.resumables.log_of(session)
        if log is not None:
            log.index_chat(message_id)

    def find_resumable(self, session_id: str, token: str) -> Session:
        return self.resumables.find(session_id, token)

    def replay(self, session: Session, after_seq: int, sink: Sink) -> None:
        """Send what ``after_seq`` missed to ``sink``, then route live events there too.

        Synchronous on purpose: no event of the session can slip in between the replay and
        the switch of its sink, so the client sees no gap and no duplicate."""
        self.resumables.replay(session, after_seq, sink)
        if session.live:
            self.resumables.cancel_expiry(session)
            session.retarget(sink)

    def watch(self, session: Session, after_seq: int, reader: ReaderSink) -> None:
        """Send what ``after_seq`` missed to ``reader``, then the live rest, as ``replay``
        does, but leave the session where it is: one more reader, not a takeover."""
        self.resumables.replay(session, after_seq, reader)
        if session.live:
            session.add_reader(reader)

    def on_control(self, control: Control) -> None:
        """A message from another node about a session this node runs."""
        if control.scope == "http":
            if control.op == "cancel":
                with contextlib.suppress(SessionError):
                    self.cancel_http(control.key)
            return
        session = self.resumables.by_key(control.key)
        if session is None or not session.live:
            return
        log = self.resumables.log_of(session)
        if control.op == "cancel":
            session.cancel()
        elif control.op == "attach" and log is not None:
            if not log.attach(control.basis, control.holder, control.ticket):
                logger.info("session %s: ignoring an attach overtaken by a takeover", session.id)
                return
            # Resumed elsewhere: a takeover, as on one node; it runs unseen here until then.
            if session.scope is not self.detached:
                self.detach(session)
            self.resumables.cancel_expiry(session)
            logger.info("session %s resumed on another node", session.id)
        elif control.op == "release" and log is not None:
            # Only the current holder's release counts; a late one from an old relay does not.
            holder_left = log.release(control.holder)
            if holder_left and session.scope is self.detached:
                self.resumables.expire_later(session)

    def took_over(self, session: Session) -> None:
        """``session`` was resumed on this node: readers on other nodes stop relaying it."""
        log = self.resumables.log_of(session)
        if log is not None:
            log.take_over()

    def cancel_http(self, session_id: str) -> bool:
        """``POST /api/sessions/{id}/cancel`` here: a session started over HTTP on this
        node, read here, detached, or read on another node. True: cancelling; False:
        ended lately; SessionError(session_not_found) when this node does not know it."""
        try:
            return self.http.cancel(session_id)
        except SessionError:
            session = self._http_sessions.get(session_id)
            if session is None or not session.live:
                raise
        session.cancel()
        return True

    async def cancel_remote_http(self, session_id: str) -> bool | None:
        """Route ``POST /api/sessions/{id}/cancel`` to the node running that session: True
        when sent there, False when it has ended, None when no other node knows it."""
        if not self.store.distributed:
            return None
        node = await self.store.owner_of_http(session_id)
        if node == ENDED:
            return False
        if node is None or node == self.store.node:
            return None
        self.store.send_control(node, Control("cancel", session_id, "http"))
        return True

    def cancel_elsewhere(self, remote: RemoteSession) -> None:
        """Tell the node running ``remote`` to cancel it (as a relay's ``cancel`` does)."""
        self.store.send_control(remote.node, Control("cancel", remote.key))

    # Private methods.

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        self._task_done(self._launched.pop(task))

    def _task_done(self, session: Session) -> None:
        session.close_if_open()
        if self._http_sessions.get(session.id) is session:
            del self._http_sessions[session.id]
        self.resumables.close_log(session)
        session.scope.release(session)
        self._running -= 1
        if not self._running:
            self._idle.set()
        if session.resume_token is not None and not self.shutting_down:
            self.resumables.expire_later(session)  # the tail stays fetchable for the grace period
        for listener in self._end_listeners:
            listener(session)

    def _expired(self, session: Session) -> None:
        """Nobody resumed ``session`` within the grace period (its token is forgotten)."""
        if session.live and session.scope is self.detached:
            logger.info("session %s was not resumed in time: cancelling it", session.id)
            session.cancel("timeout")
