"""The interface between the SessionManager and a session store (sans-I/O types)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from server.protocol.envelope import Envelope

__all__ = ["ENDED", "ChatAnswer", "Control", "EventLog", "RemoteSession", "SessionStore"]

ENDED = "-ended-"  # what owner_of_http() answers for a session that has ended

ControlOp = Literal["cancel", "attach", "release"]


@dataclass(frozen=True, slots=True)
class Control:
    """A message to the node that owns a session.

    ``key`` is the hashed resume token (never the token itself), or for ``scope: http`` the
    session id of an SSE/HTTP session (what ``POST /api/sessions/{id}/cancel`` knows)."""

    op: ControlOp
    key: str
    scope: Literal["token", "http"] = "token"
    # attach: the takeover epoch the sender saw in the registry (``RemoteSession.epoch``)
    # and its ticket (``SessionStore.ticket``); attach and release: the sender's name for
    # this attachment.
    basis: int = 0
    holder: str = ""
    ticket: int = 0


@dataclass(frozen=True, slots=True)
class RemoteSession:
    """A session found in the shared registry: who owns it and in what state."""

    session_id: str
    key: str  # the hashed resume token
    node: str
    ended: bool
    owner_alive: bool
    epoch: int = 0  # the newest takeover the owner has written (see EventLog.attach)


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """A detached ``/api/chat`` answer found by its chat id (its session id) alone."""

    key: str  # the hashed resume token: what the registry and the log are keyed by
    message_id: str  # the id its UI message stream carries


class EventLog(Protocol):
    """A session's shared replay log, written by the node that runs it."""

    def append(self, envelope: Envelope) -> None:
        """Record one event (written out later, in a batch)."""
        ...

    def holds(self, envelope: Envelope) -> bool:
        """True while ``envelope``, the newest event appended, waits to be written."""
        ...

    def replace(self, newest: Envelope, merged: Envelope) -> None:
        """Write ``merged`` instead of ``newest``, which holds() says is still waiting."""
        ...

    def detached(self) -> None:
        """The session's transport went away (recorded in the registry entry)."""
        ...

    def attach(self, basis: int, holder: str, ticket: int) -> bool:
        """A reader on another node takes the session over, having seen epoch ``basis``,
        with ``ticket``. Accepted (True) only if it is the newest resume: no resume on
        this node since ``basis``, and no relay with a later ticket. Then the next epoch
        and a takeover mark go into the log. An older attach never undoes a newer one."""
        ...

    def release(self, holder: str) -> bool:
        """``holder`` stopped reading: True if it still held the session (False: someone
        took it over since, and this late release must change nothing)."""
        ...

    def take_over(self) -> None:
        """A resume on this node: a new epoch, so every relay elsewhere stops."""
        ...

    def index_chat(self, message_id: str) -> None:
        """A detached ``/api/chat`` answer: make it findable by its session id, the chat
        id (``SessionStore.chat_answer``), with the message id of its parts."""
        ...


class SessionStore(Protocol):
    """Registry, replay log and cancel routing shared by the nodes of a cluster."""

    node: str  # this process's id in the cluster
    distributed: bool  # False: nothing leaves this process

    async def start(self, on_control: Callable[[Control], None]) -> None:
        """Begin background work; ``on_control`` receives messages for this node."""
        ...

    async def aclose(self) -> None:
        """Flush what is pending (bounded) and stop every background task."""
        ...

    def open_log(self, session_id: str, key: str, *, http: bool) -> EventLog | None:
        """Start a session's shared log and registry entry (None: not shared)."""
        ...

    def close_log(self, log: EventLog) -> None:
        """The session has ended: its entry and log now expire after the grace period."""
        ...

    async def find(
        self, session_id: str, key: str, *, issued_s: float | None = None
    ) -> RemoteSession | None:
        """The registry entry for a hashed token, if it exists and names ``session_id``.
        ``issued_s``: when the token was issued; a token too new to be registered yet is
        waited for (bounded) instead of reported unknown."""
        ...

    async def ticket(self, remote: RemoteSession) -> int | None:
        """The next takeover ticket of ``remote``: the store hands them out in the order
        relays ask, on every node, so the owner can tell which of two relays' attaches
        came from the newer resume (None: the entry is gone, or the store did not answer)."""
        ...

    def events(
        self,
        remote: RemoteSession,
        after_seq: int,
        holder: str | None = None,
        ticket: int | None = None,
    ) -> AsyncGenerator[Envelope, None]:
        """The logged events with seq > ``after_seq``, then the live ones, until
        ``stream_end``; a recovery ``metadata`` first when the log was trimmed past
        ``after_seq``; ``error{node_lost}`` + ``stream_end{error}`` if the owner died or
        its log was dropped. Ends silently at a takeover newer than the reader's (whose
        name is ``holder``, whose attach carried ``ticket``)."""
        ...

    async def owner_of_http(self, session_id: str) -> str | None:
        """The node running the SSE/HTTP session ``session_id``; ``ENDED`` when it ended
        lately (within the grace period); None when no node knows it."""
        ...

    async def chat_answer(self, chat_id: str) -> ChatAnswer | None:
        """The newest detached ``/api/chat`` answer of ``chat_id`` any node indexed (within
        the grace period after it ended), or None."""
        ...

    def send_control(self, node: str, control: Control) -> None:
        """Queue ``control`` for ``node`` (delivered in the background, at most once)."""
        ...

    def health(self) -> dict[str, Any]:
        """Gauges and counters for /healthz (and a later /metrics)."""
        ...
