"""The client for scripts without asyncio: a private event loop in a thread.

    from tokenmux.sync import Client

    with Client("http://127.0.0.1:8080") as client:
        print(client.complete("Hello"))
        for event in client.stream("Tell me more"):
            ...

The ``Client`` owns its loop thread and stops it in ``close()`` (or at the end of the
``with`` block). Every call blocks the calling thread until the loop answers; Ctrl-C while
waiting interrupts the wait, not the loop. Leaving a ``stream()`` loop early, by ``break``
or by an exception such as KeyboardInterrupt, cancels that session.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Coroutine, Iterator
from typing import Any, TypeVar

from tokenmux import client as aio
from tokenmux.events import Event, Ready, StreamEnd

__all__ = ["Client", "Session"]

_T = TypeVar("_T")


class Session:
    """A session of the sync client: iterate it (once) for its events."""

    def __init__(self, owner: Client, session: aio.Session) -> None:
        self._owner = owner
        self._session = session

    @property
    def id(self) -> str:
        return self._session.id

    @property
    def resume_token(self) -> str | None:
        return self._session.resume_token

    @property
    def content(self) -> str:
        """The text received so far."""
        return self._session.content

    @property
    def end(self) -> StreamEnd | None:
        return self._session.end

    def __iter__(self) -> Iterator[Event]:
        events = aiter(self._session)
        finished = False
        try:
            while True:
                try:
                    yield self._owner._call(anext(events))
                except StopAsyncIteration:
                    finished = True
                    return
        finally:
            if not self._owner.closed:
                self._owner._call(_close_iterator(events))
                if not finished and not self._session.ended:
                    self.cancel()

    def text(self) -> str:
        """Wait for the whole reply; raises the session's error (see ``aio.Session``)."""
        return self._owner._call(self._session.text())

    def result(self) -> StreamEnd:
        return self._owner._call(self._session.result())

    def cancel(self) -> StreamEnd | None:
        """Cancel and wait for the server's acknowledgement."""
        return self._owner._call(self._session.cancel())


class Client:
    """``tokenmux.Client`` run on a private event loop; same arguments."""

    def __init__(self, url: str = "http://127.0.0.1:8080", **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tokenmux client loop", daemon=True
        )
        self._thread.start()
        self._closed = False
        try:
            self._client = self._call(_make_client(url, options))
        except BaseException:
            self._stop_loop()
            raise

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def ready(self) -> Ready | None:
        return self._client.ready

    def connect(self) -> Ready:
        return self._call(self._client.connect())

    def start(self, prompt: str | None = None, **options: Any) -> Session:
        """Start a session (see ``tokenmux.Client.start``)."""
        return Session(self, self._call(self._client.start(prompt, **options)))

    def stream(self, prompt: str | None = None, **options: Any) -> Iterator[Event]:
        """Start a session and iterate its events."""
        return iter(self.start(prompt, **options))

    def complete(self, prompt: str | None = None, **options: Any) -> str:
        """Start a session and return its whole text; Ctrl-C cancels it."""
        session = self.start(prompt, **options)
        try:
            return session.text()
        except KeyboardInterrupt:
            session.cancel()
            raise

    def resume(self, session_id: str, *, token: str, after_seq: int = -1) -> Session:
        return Session(
            self, self._call(self._client.resume(session_id, token=token, after_seq=after_seq))
        )

    def watch(self, session_id: str, *, token: str, after_seq: int = -1) -> Session:
        """Read someone else's session as one more reader (``Client.watch``)."""
        return Session(
            self, self._call(self._client.watch(session_id, token=token, after_seq=after_seq))
        )

    def close(self, *, cancel_sessions: bool = True) -> None:
        """Close the client (cancelling live sessions) and stop its loop thread."""
        if self._closed:
            return
        try:
            self._call(self._client.close(cancel_sessions=cancel_sessions))
        finally:
            self._closed = True
            self._stop_loop()

    def _call(self, awaitable: Awaitable[_T]) -> _T:
        if self._closed:
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # never awaited: say nothing about it
            raise RuntimeError("the sync client is closed")
        future = asyncio.run_coroutine_threadsafe(_wrap(awaitable), self._loop)
        try:
            return future.result()
        except BaseException:
            # Interrupted (KeyboardInterrupt) or failed: leave nothing running on the loop.
            future.cancel()
            raise

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()


async def _make_client(url: str, options: dict[str, Any]) -> aio.Client:
    return aio.Client(url, **options)


async def _wrap(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


async def _close_iterator(events: Any) -> None:
    await events.aclose()
