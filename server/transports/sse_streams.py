"""What the app knows of each open SSE stream, and the one keep-alive timer of all of them.

Kept apart from the routes (transports/sse.py) so the application's state can hold the
set of open streams without importing the routes.
"""

from __future__ import annotations

import asyncio
import time

from server.metrics import OpenQueue

__all__ = ["OpenStream", "SseStreams"]


class OpenStream:
    """An open SSE stream as the app sees it: a one-waiter asyncio.Event without the
    Event's deque, the stream's queue (/metrics reads it) and when it last wrote.

    ``ping`` and ``last_write`` let the app's one keep-alive timer (SseStreams) wake a
    quiet stream, instead of every stream arming a timer of its own on every wait.
    transports/sse.py's SseChannel is one: one object per stream, not one per role.
    """

    __slots__ = ("_is_set", "_waiter", "last_write", "outbox", "overflowed", "ping")

    outbox: OpenQueue  # set by the subclass, which makes it with its own callbacks

    def __init__(self) -> None:
        self._is_set = False
        self._waiter: asyncio.Future[None] | None = None
        self.last_write = time.monotonic()
        self.ping = False
        self.overflowed = False

    def overflow(self) -> None:
        """The outbox's on_overflow: wake the writer, which closes the stream."""
        self.overflowed = True
        self.set()

    def set(self) -> None:
        self._is_set = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._is_set = False

    def wait(self) -> asyncio.Future[None]:
        """A future that is done once the signal is set (at once if it is). Awaited
        directly: no coroutine frame is held by every stream while it waits."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._is_set:
            waiter.set_result(None)
        else:
            self._waiter = waiter
        return waiter


class SseStreams:
    """The open streams of an app, and the single timer that keeps quiet ones alive.

    Every ``keepalive_s / 2`` it wakes each stream that wrote nothing for ``keepalive_s``,
    which then sends a ``: ping`` comment: a quiet stream hears one every 1 to 1.5
    ``keepalive_s``. One timer for all streams saves a timer per stream per wait.
    """

    def __init__(self, keepalive_s: float) -> None:
        self.keepalive_s = keepalive_s
        self.open: set[OpenStream] = set()

    async def run(self) -> None:
        if self.keepalive_s <= 0:
            return
        while True:  # until cancelled at app cleanup
            await asyncio.sleep(self.keepalive_s / 2)
            quiet_since = time.monotonic() - self.keepalive_s
            for stream in self.open:
                if stream.last_write <= quiet_since:
                    stream.ping = True
                    stream.set()
