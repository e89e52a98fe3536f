"""Resume's bookkeeping (PROTOCOL.md §6): tokens, shared logs, grace timers and replay.

A session that may be resumed gets an unguessable token (looked up only through its
``token_key()``, so a lookup's timing says nothing about the token), a replay buffer in
front of its sink and, with a shared store, an event log other nodes read. It stays
resumable for ``resume.grace_s`` after it detached or ended. Which scope holds a session,
and its task, stay the manager's concern; this module only answers "which session does
this token resume", "what did the client miss" and "when is it forgotten".
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable

from server.config import ResumeConfig
from server.errors import ErrorCode, SessionError
from server.protocol.envelope import Envelope, EventType
from server.sessions.buffer import ReplayBuffer, ReplayingSink
from server.sessions.outbox import Sink
from server.sessions.session import Session
from server.sessions.store import EventLog, SessionStore
from server.sessions.store.replay import new_token, token_key

__all__ = ["Resumables"]


class Resumables:
    """The resumable sessions of this node, by token, with their logs and grace timers."""

    def __init__(
        self,
        config: ResumeConfig,
        store: SessionStore,
        clock: Callable[[], float],
        on_expired: Callable[[Session], None],
    ) -> None:
        self.config = config
        self._store = store
        self._clock = clock
        self._on_expired = on_expired  # the grace period ran out for this session
        self._by_key: dict[str, Session] = {}  # by token_key(token)
        self._expiry: dict[Session, asyncio.TimerHandle] = {}
        self._logs: dict[Session, EventLog] = {}

    def issue(
        self, session_id: str, sink: Sink, *, detach: bool, http: bool
    ) -> tuple[str | None, EventLog | None, Sink]:
        """A token, a shared log and the sink to write through, for a session starting now
        (no token, no log and ``sink`` itself when it is not to be resumable)."""
        # Only sessions that asked to outlive their transport keep a replay buffer: the
        # buffer is the one per-event cost resume adds, and nobody resumes the others. An
        # SSE session is also logged in a shared store, where other nodes may cancel it.
        if not (self.config.enabled and (detach or http)):
            return None, None, sink
        token = new_token(time.time())  # wall clock: other nodes read its issue time
        log = self._store.open_log(session_id, token_key(token), http=http)
        if not detach and log is None:
            return None, None, sink
        return token, log, ReplayingSink(ReplayBuffer(self.config.buffer_events), sink, log)

    def register(self, session: Session, log: EventLog | None) -> None:
        if session.resume_token is not None:
            self._by_key[token_key(session.resume_token)] = session
        if log is not None:
            self._logs[session] = log

    def find(self, session_id: str, token: str) -> Session:
        """The session ``token`` resumes; SessionError(unauthorized) unless id and token match."""
        session = self._by_key.get(token_key(token))
        if (
            session is None
            or session.resume_token is None
            or not hmac.compare_digest(session.resume_token, token)
            or session.id != session_id
        ):
            raise SessionError(
                "no resumable session matches this id and token", code=ErrorCode.UNAUTHORIZED
            )
        return session

    def by_key(self, key: str) -> Session | None:
        """The session whose token has ``key`` (a control message from another node)."""
        return self._by_key.get(key)

    def log_of(self, session: Session) -> EventLog | None:
        return self._logs.get(session)

    def close_log(self, session: Session) -> None:
        log = self._logs.pop(session, None)
        if log is not None:
            self._store.close_log(log)

    def replay(self, session: Session, after_seq: int, sink: Sink) -> None:
        """Send what ``after_seq`` missed to ``sink`` (a recovery notice first when the
        buffer lost some of it)."""
        assert isinstance(session.sink, ReplayingSink)
        events, complete = session.sink.buffer.after(after_seq)
        if not complete:
            sink.send(self._recovery_event(session, events))
        for event in events:
            sink.send(event)

    def expire_later(self, session: Session) -> None:
        self.cancel_expiry(session)
        loop = asyncio.get_running_loop()
        self._expiry[session] = loop.call_later(self.config.grace_s, self._expire, session)

    def cancel_expiry(self, session: Session) -> None:
        handle = self._expiry.pop(session, None)
        if handle is not None:
            handle.cancel()

    def clear(self) -> None:
        """Forget every resumable session (a shutdown)."""
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()
        self._by_key.clear()

    # Private methods.

    def _expire(self, session: Session) -> None:
        self._expiry.pop(session, None)
        if session.resume_token is not None:
            self._by_key.pop(token_key(session.resume_token), None)
        self._on_expired(session)

    def _recovery_event(self, session: Session, events: list[Envelope]) -> Envelope:
        """``metadata{recovered: false, content_so_far}`` when the buffer lost the first
        missed events; its seq is the one just before the oldest event still held."""
        assert isinstance(session.sink, ReplayingSink)
        text = session.stream.text()
        before = session.sink.buffer.length_before(events, len(text))
        return {
            "type": EventType.METADATA.value,
            "session": session.id,
            "seq": events[0]["seq"] - 1,
            "timestamp": int(self._clock() * 1000),
            "data": {"recovered": False, "content_so_far": text[:before]},
        }
