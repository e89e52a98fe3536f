"""The embedded default: nothing is shared, the SessionManager's registry is the store."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

from server.protocol.envelope import Envelope
from server.sessions.store.base import ChatAnswer, Control, EventLog, RemoteSession

__all__ = ["MemoryStore"]


class MemoryStore:
    """A store for one process: every session is found locally or not at all."""

    node = "local"
    distributed = False

    async def start(self, on_control: Callable[[Control], None]) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def open_log(self, session_id: str, key: str, *, http: bool) -> EventLog | None:
        return None

    def close_log(self, log: EventLog) -> None:
        return None

    async def find(
        self, session_id: str, key: str, *, issued_s: float | None = None
    ) -> RemoteSession | None:
        return None

    async def ticket(self, remote: RemoteSession) -> int | None:
        return None

    async def events(
        self,
        remote: RemoteSession,
        after_seq: int,
        holder: str | None = None,
        ticket: int | None = None,
    ) -> AsyncGenerator[Envelope, None]:
        return
        yield

    async def owner_of_http(self, session_id: str) -> str | None:
        return None

    async def chat_answer(self, chat_id: str) -> ChatAnswer | None:
        return None

    def send_control(self, node: str, control: Control) -> None:
        return None

    def health(self) -> dict[str, Any]:
        return {"type": "memory", "healthy": True}
