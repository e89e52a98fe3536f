"""The sync client, driven from a plain thread as a script would, against the real server."""

from __future__ import annotations

import asyncio
import threading

import pytest

from server.app import RunningServer
from server.state import MANAGER
from tokenmux import ConnectionFailed, ContentChunk, RequestError, StreamEnd
from tokenmux.sync import Client


def loop_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name == "tokenmux client loop"}


async def test_complete_stream_and_cancel_from_a_script(server: RunningServer) -> None:
    sim = server.app[MANAGER].providers.get("sim")

    def script() -> None:
        with Client(server.url, encoding="msgpack") as client:
            assert client.complete("Hello", params={"max_tokens": 3}).startswith("Hello")
            events = list(client.stream("Again", params={"max_tokens": 3}))
            assert isinstance(events[-1], StreamEnd) and events[-1].reason == "complete"
            with pytest.raises(RequestError):
                client.start("x", provider="nope")
            session = client.start("Hang", params={"hang_at": 2})
            for event in session:
                if isinstance(event, ContentChunk):
                    end = session.cancel()
                    assert end is not None and end.reason == "cancelled"
            for event in client.stream("Left early", params={"hang_at": 2}):
                if isinstance(event, ContentChunk):
                    break  # leaving the loop cancels the session
        assert client.closed

    await asyncio.to_thread(script)
    assert sim.stats.cancelled == 2 and sim.stats.active == 0  # type: ignore[attr-defined]
    assert not loop_threads()  # the private loop thread is stopped


async def test_close_ends_the_loop_thread_even_after_a_failed_connect() -> None:
    def script() -> None:
        client = Client("http://127.0.0.1:9", connect_timeout_s=2)  # nothing listens there
        with pytest.raises(ConnectionFailed):
            client.connect()
        client.close()
        with pytest.raises(RuntimeError):
            client.complete("x")

    await asyncio.to_thread(script)
    assert not loop_threads()
