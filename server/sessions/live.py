"""What a scope and the things it holds know of each other, as two small protocols.

A scope holds two kinds of live thing: a Session (its task runs here) and a Follower (it
relays a session that runs on another node). Both are ``Live``; the scope holding one is
its ``Holder``. The transports and the scope speak only these, so neither the session nor
the follower imports the manager.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from server.protocol.stream import EndReason
from server.sessions.outbox import Sink

__all__ = ["Holder", "Live"]


class Live(Protocol):
    """A session as its scope sees it: a task to own, a way to cancel it, one sink."""

    id: str
    task: asyncio.Task[None] | None
    scope: Holder

    @property
    def live(self) -> bool: ...

    def cancel(self, reason: EndReason = "cancelled") -> None: ...

    def writes_to(self, sink: Sink) -> bool: ...


class Holder(Protocol):
    """The scope holding a live thing now (it changes when the session is taken over)."""

    def abandon(self, session: Live, reason: EndReason = "cancelled") -> None: ...

    async def wait(self, session: Live) -> None: ...

    def release(self, session: Live) -> None: ...

    def let_go(self, session: Live) -> None: ...
