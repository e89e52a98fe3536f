"""POST /api/stream: one session as server-sent events (PROTOCOL.md section 4).

Each event is exactly one ``data: <compact JSON>`` line and a blank line; ``: ping``
comments keep quiet streams alive (from the very start, so a long time to first token does
not look like a dead connection); ``data: [DONE]`` ends the stream. A client that goes away
(aiohttp cancels the handler, or a write fails) cancels the session and so the provider.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiohttp import web

from server.errors import TokenmuxError
from server.logs import EVENTS, log_events
from server.metrics import TransportTally
from server.protocol.envelope import Envelope
from server.protocol.sse import DONE, KEEPALIVE
from server.sessions.outbox import Outbox
from server.state import CONFIG, MANAGER
from server.transports.http import json_error, read_start
from server.transports.metrics import TALLIES

__all__ = ["SSE_HEADERS", "handle_stream"]

logger = logging.getLogger(__name__)

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class _Overflow(Exception):
    pass


def _sse_batch(batch: list[Envelope], tally: TransportTally) -> bytes:
    """Everything queued as one write: ``data: <JSON>`` and a blank line per event.

    A function of its own so the payloads (orjson output buffers are 4 KiB each) are
    released on return, not kept alive by the waiting handler.
    """
    dumps, sent_events, sent_bytes = orjson.dumps, tally.events, tally.bytes
    parts: list[bytes] = []
    for event in batch:
        payload = dumps(event)
        parts += (b"data: ", payload, b"\n\n")
        sent_events[event["type"]] += 1
        sent_bytes[event["type"]] += len(payload)
    return b"".join(parts)


async def handle_stream(request: web.Request) -> web.StreamResponse:
    """POST /api/stream."""
    config = request.app[CONFIG]
    scope = request.app[MANAGER].http
    wake = asyncio.Event()
    overflowed = False

    def on_overflow() -> None:
        nonlocal overflowed
        overflowed = True
        wake.set()

    outbox = Outbox(
        merge_bytes=config.limits.outbox_merge_bytes,
        max_bytes=config.limits.outbox_max_bytes,
        on_ready=wake.set,
        on_overflow=on_overflow,
    )
    try:
        start = await read_start(request)
        session = scope.start(start, outbox)  # refusals happen here, before any byte is sent
    except TokenmuxError as exc:
        return json_error(exc)
    response = web.StreamResponse(headers=SSE_HEADERS)
    tally = request.app[TALLIES].sse
    tally_streams = request.app[TALLIES].sse_streams
    tally_streams.add(outbox)
    try:
        await response.prepare(request)
        ended = False
        while not ended:
            try:
                async with asyncio.timeout(config.sse.keepalive_s):
                    await wake.wait()
            except TimeoutError:
                await response.write(KEEPALIVE)
                continue
            wake.clear()
            if overflowed:
                raise _Overflow
            batch = outbox.drain()
            await response.write(_sse_batch(batch, tally))
            if EVENTS.isEnabledFor(logging.DEBUG):
                log_events("sse", batch)
            ended = bool(batch) and batch[-1]["type"] == "stream_end"
            del batch  # hold nothing while waiting for the next events
        await response.write(DONE)
        await response.write_eof()
    except (ConnectionError, _Overflow) as exc:
        logger.info("sse client of session %s went away: %r", session.id, exc)
    finally:
        # Runs on normal end (no-op), on a failed write, and when aiohttp cancels the
        # handler because the client disconnected: the session must not outlive its reader.
        outbox.close()
        tally_streams.discard(outbox)
        tally.merged += outbox.merged
        scope.stop(session)
        await scope.wait(session)
    return response
