"""Log lines carry the request id and the session id; debug mode logs every event."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from server.app import RunningServer
from server.logs import ContextFilter
from tests._client import WsClient
from tests._wait import eventually


def _records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


async def test_session_end_line_has_request_and_session_ids(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The request id comes from X-Request-Id (a proxy's); the session id from the task."""
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level(logging.INFO, logger="server.sessions.session")
    client = await WsClient.connect(server.url, additional_headers={"X-Request-Id": "req-42"})
    await client.start("s1", params={"max_tokens": 3})
    await client.until_ended({"s1"})
    await client.close()
    (record,) = _records(caplog, "server.sessions.session")
    message = record.getMessage()
    assert message.startswith("session_end session=s1 provider=sim model=sim-1 reason=complete")
    assert "ttft_ms=" in message and "output_tokens=4" in message and "duration_ms=" in message
    assert record.request_id == "req-42"  # type: ignore[attr-defined]
    assert record.session_id == "s1"  # type: ignore[attr-defined]


async def test_event_lines_in_debug_mode(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """`--log-events` turns on one `>` line per event written, with type, session, seq."""
    caplog.set_level(logging.DEBUG, logger="tokenmux.events")
    client = await WsClient.connect(server.url)
    await client.start("s1", params={"max_tokens": 1})
    await client.until_ended({"s1"})
    await client.close()
    lines = [r.getMessage() for r in _records(caplog, "tokenmux.events")]
    assert "> ws ready session=- seq=-" in lines
    assert "> ws content_chunk session=s1 seq=1" in lines
    assert lines[-1] == "> ws stream_end session=s1 seq=5"


@pytest.mark.parametrize("when", ["before-its-first-step", "while-streaming"])
async def test_session_end_line_of_a_cancelled_session_names_it_in_its_context(
    server: RunningServer, caplog: pytest.LogCaptureFixture, when: str
) -> None:
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level(logging.INFO, logger="server.sessions.session")
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("b", params={"hang_at": 1})
    if when == "while-streaming":
        await client.receive_until(lambda e: e["type"] == "content_chunk")
    await client.cancel("b")
    await client.until_ended({"b"})
    await client.close()
    (record,) = _records(caplog, "server.sessions.session")
    assert "session=b " in record.getMessage() and "reason=cancelled" in record.getMessage()
    assert record.session_id == "b"  # type: ignore[attr-defined]


async def test_static_files_are_logged_at_debug_and_other_requests_at_info(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A dashboard load fetches ~10 assets: their access lines would drown the rest."""
    caplog.set_level(logging.DEBUG, logger="aiohttp.access")
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/static/app.css", "/client/index.js", "/healthz"):
            async with http.get(server.url + path) as response:
                await response.read()
    await eventually(lambda: len(_records(caplog, "aiohttp.access")) == 4)
    levels = {r.getMessage().split()[2]: r.levelname for r in _records(caplog, "aiohttp.access")}
    assert levels == {
        "/": "INFO",
        "/static/app.css": "DEBUG",
        "/client/index.js": "DEBUG",
        "/healthz": "INFO",
    }
