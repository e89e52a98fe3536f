"""Follower: a resume on this node of a session that runs on another one.

The session's task stays on its owning node. Here one task per resumed session reads its
shared log (the replay, then the live rest until ``stream_end``) into the client's sink.
``cancel`` is routed to the owner, whose ``stream_end{cancelled}`` then arrives through
the log like every other event. The follower's scope owns its task: closing the scope
stops the follower (and tells the owner the session is detached again).

A route that authorized the reader some other way (the chat routes, by the chat id) finds
the session itself and hands the follower its registry entry: then there is no token to
look it up by, nor to put back into ``stream_start``.

Each follower attaches under a name of its own, with the epoch it found in the registry
and a ticket the store hands out in the order followers ask (on this node or any other):
the owner ranks two relays by their tickets, never by an epoch that its registry may not
show yet, so the newer resume wins however quickly it followed the older one. A takeover
by a newer resume (a relay with a later ticket, or a resume on the owner) ends this
follower's relaying at the takeover mark in the log, silently, and its late release
changes nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Callable
from contextlib import aclosing

from server.errors import ErrorCode, SessionError, TokenmuxError
from server.protocol.envelope import Resume
from server.protocol.stream import EndReason
from server.sessions.live import Holder
from server.sessions.outbox import Sink
from server.sessions.store import Control, RemoteSession, SessionStore
from server.sessions.store.replay import WATCHING, issued_at, token_key

__all__ = ["Follower"]

logger = logging.getLogger(__name__)


class Follower:
    """Relays one remotely running session to a local sink."""

    def __init__(
        self,
        store: SessionStore,
        request: Resume,
        sink: Sink,
        scope: Holder,
        on_refused: Callable[[TokenmuxError], None] | None = None,
        *,
        watching: bool = False,
        found: RemoteSession | None = None,
    ) -> None:
        self.id = request.session
        # A reader (``watch``): no attach, and it reads on through takeovers.
        self.watching = watching
        self.scope = scope
        self.task: asyncio.Task[None] | None = None  # set and owned by the scope
        self._store = store
        self._request = request
        self._sink = sink
        self._on_refused = on_refused
        self._remote = found
        self._cancel_pending = False
        self._decided = asyncio.Event()
        if found is not None:
            self._decided.set()
        self._refusal: TokenmuxError | None = None
        self._ended = False
        self._holder = secrets.token_hex(8)  # this attachment's name, for the owner

    @property
    def live(self) -> bool:
        return self.task is not None and not self.task.done()

    @property
    def relayed_end(self) -> bool:
        """True once the session's ``stream_end`` went to the sink: it ended."""
        return self._ended

    def writes_to(self, sink: Sink) -> bool:
        """A follower has one reader for life: true for the sink it was made with."""
        return self._sink is sink

    def resumed_by(self, request: Resume) -> bool:
        """True if this follower relays a resume with ``request``'s id and token (a reader,
        or a follower a chat id authorized, never is)."""
        token = self._request.resume_token
        return (
            not self.watching
            and bool(token)
            and request.session == self.id
            and hmac.compare_digest(token, request.resume_token)
        )

    def cancel(self, reason: EndReason = "cancelled") -> None:
        """Ask the owning node to cancel; its acknowledgement comes through the log."""
        if self._remote is None:
            self._cancel_pending = True  # the lookup is still running: send it after
        elif not self._ended:
            self._store.send_control(self._remote.node, Control("cancel", self._remote.key))

    def cancel_following(self) -> None:
        """Stop relaying (the client went away); the session goes on on its node."""
        if self.task is not None:
            self.task.cancel()

    async def accepted(self) -> None:
        """Wait for the lookup; raise the refusal (unauthorized, ...) if there was one.
        Cancelled while waiting (the client left): the follower stops too."""
        try:
            await self._decided.wait()
        except asyncio.CancelledError:
            self.cancel_following()
            raise
        if self._refusal is not None:
            raise self._refusal

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            if not self._decided.is_set():  # stopped during the lookup (a shutdown)
                self._refusal = SessionError(
                    "the server is shutting down", code=ErrorCode.SHUTTING_DOWN
                )
                self._decided.set()

    async def _run(self) -> None:
        token = self._request.resume_token
        remote = self._remote or await self._lookup(token)
        if remote is None:
            return
        ticket = None
        if remote.owner_alive and not remote.ended and not self.watching:
            ticket = await self._store.ticket(remote)
        attached = ticket is not None
        if ticket is not None:
            attach = Control(
                "attach", remote.key, basis=remote.epoch, holder=self._holder, ticket=ticket
            )
            self._store.send_control(remote.node, attach)
        if self._cancel_pending:
            self.cancel()
        logger.info("session %s resumed from node %s", self.id, remote.node)
        holder = WATCHING if self.watching else self._holder
        log = self._store.events(remote, self._request.after_seq, holder, ticket)
        try:
            async with aclosing(log) as events:
                async for event in events:
                    if event["type"] == "stream_start" and token:
                        # Logged without its token; this client sent it, so it gets it back.
                        event = {**event, "data": {**event["data"], "resume_token": token}}
                    elif event["type"] == "stream_end":
                        self._ended = True
                    self._sink.send(event)
        finally:
            if attached and not self._ended:
                release = Control("release", remote.key, holder=self._holder)
                self._store.send_control(remote.node, release)
            how = "ended" if self._ended else "stopped before the end"
            logger.info("session %s relayed from node %s: %s", self.id, remote.node, how)

    async def _lookup(self, token: str) -> RemoteSession | None:
        """The registry entry of ``token``, or None once the refusal is recorded."""
        try:
            remote = await self._store.find(self.id, token_key(token), issued_s=issued_at(token))
            if remote is None:
                raise SessionError(
                    "no resumable session matches this id and token", code=ErrorCode.UNAUTHORIZED
                )
        except TokenmuxError as exc:
            self._refusal = exc
            self._decided.set()
            if self._on_refused is not None:
                self._on_refused(exc)
            return None
        self._remote = remote
        self._decided.set()
        return remote
