"""SessionManager: the only code that creates, cancels and awaits session tasks.

Each transport connection gets a SessionScope (its registry of live sessions and its
limits); all SSE requests share one scope so ``POST /api/sessions/{id}/cancel`` can find
them. Every task has an owner: its scope cancels and awaits it on ``close()``, and the
manager does the same for every scope on ``shutdown()``.

Call order: ``start()`` after ``shutdown()`` began raises SessionError(shutting_down).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from server.errors import ErrorCode, SessionError
from server.protocol.envelope import Start
from server.protocol.stream import EndReason
from server.providers.registry import ProviderRegistry
from server.sessions.outbox import Sink
from server.sessions.session import Session

__all__ = ["SessionManager", "SessionScope"]

logger = logging.getLogger(__name__)

REMEMBERED_ENDED_IDS = 4096  # per scope: ids whose late `cancel` is accepted silently


class SessionScope:
    """The live sessions of one connection (or of all SSE requests)."""

    def __init__(self, manager: SessionManager, *, max_sessions: int | None) -> None:
        self._manager = manager
        self._max_sessions = max_sessions
        self._live: dict[str, tuple[Session, asyncio.Task[None]]] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self.closed = False

    def __len__(self) -> int:
        return len(self._live)

    def start(self, start: Start, sink: Sink) -> Session:
        """Register and launch a session. Raises SessionError for every refusal."""
        if self.closed or self._manager.shutting_down:
            raise SessionError("the server is shutting down", code=ErrorCode.SHUTTING_DOWN)
        if start.session in self._live:
            raise SessionError(
                f"session {start.session!r} is still live", code=ErrorCode.DUPLICATE_SESSION
            )
        if self._max_sessions is not None and len(self._live) >= self._max_sessions:
            raise SessionError(
                f"at most {self._max_sessions} live sessions per connection",
                code=ErrorCode.TOO_MANY_SESSIONS,
            )
        provider = self._manager.providers.get(start.provider)
        session = Session(start, provider, sink, clock=self._manager.clock)
        session.open()
        task = asyncio.create_task(session.run(), name=f"session {start.session}")
        self._live[start.session] = (session, task)
        self._ended.pop(start.session, None)
        task.add_done_callback(lambda _: self._forget(session))
        return session

    def cancel(self, session_id: str, reason: EndReason = "cancelled") -> bool:
        """Cancel a live session: True. Already ended: False. Never started: SessionError."""
        entry = self._live.get(session_id)
        if entry is None:
            if session_id in self._ended:
                return False
            raise SessionError(
                f"no session {session_id!r} on this connection", code=ErrorCode.SESSION_NOT_FOUND
            )
        session, task = entry
        session.request_cancel(reason)
        task.cancel()
        return True

    def stop(self, session: Session, reason: EndReason = "cancelled") -> None:
        """Cancel ``session`` if it is still live (never a newer session with its id)."""
        entry = self._live.get(session.id)
        if entry is not None and entry[0] is session:
            session.request_cancel(reason)
            entry[1].cancel()

    async def wait(self, session: Session) -> None:
        """Wait until ``session`` has ended (at once if it already has)."""
        entry = self._live.get(session.id)
        if entry is not None and entry[0] is session:
            # asyncio.wait neither cancels the task when we are cancelled nor raises its
            # outcome (a task cancelled before its first step ends "cancelled").
            await asyncio.wait({entry[1]})

    async def close(self, reason: EndReason = "cancelled") -> None:
        """Cancel every live session and wait for all of them to end."""
        self.closed = True
        tasks = []
        for session, task in list(self._live.values()):
            session.request_cancel(reason)
            task.cancel()
            tasks.append(task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._manager.scopes.discard(self)

    def _forget(self, session: Session) -> None:
        session.close_if_open()
        if self._live.get(session.id, (None,))[0] is session:
            del self._live[session.id]
        self._ended[session.id] = None
        if len(self._ended) > REMEMBERED_ENDED_IDS:
            self._ended.popitem(last=False)
        self._manager.session_ended(session)


class SessionManager:
    """Owns every scope and, through them, every session task of the server."""

    def __init__(
        self,
        providers: ProviderRegistry,
        *,
        max_sessions_per_connection: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.providers = providers
        self.clock = clock
        self.scopes: set[SessionScope] = set()
        self.shutting_down = False
        self._max_sessions = max_sessions_per_connection
        self._end_listeners: list[Callable[[Session], None]] = []
        self.http = self.open_scope(max_sessions=None)

    @property
    def live_sessions(self) -> int:
        return sum(len(scope) for scope in self.scopes)

    def open_scope(self, *, max_sessions: int | None = -1) -> SessionScope:
        """A new registry for one connection (-1: the configured per-connection limit)."""
        limit = self._max_sessions if max_sessions == -1 else max_sessions
        scope = SessionScope(self, max_sessions=limit)
        self.scopes.add(scope)
        return scope

    def on_session_end(self, listener: Callable[[Session], None]) -> None:
        """Call ``listener(session)`` whenever a session's task has finished."""
        self._end_listeners.append(listener)

    def session_ended(self, session: Session) -> None:
        for listener in self._end_listeners:
            listener(session)

    async def shutdown(self) -> None:
        """Refuse new sessions; end every live one with ``stream_end{reason: shutdown}``."""
        self.shutting_down = True
        scopes = list(self.scopes)
        await asyncio.gather(*(scope.close("shutdown") for scope in scopes))
