"""Server-sent events: POST /api/stream and the resume route (PROTOCOL.md §4 and §6).

``POST /api/stream``: each event is exactly one ``data: <compact JSON>`` line and a blank
line; ``: ping`` comments keep quiet streams alive (from the very start, so a long time to
first token does not look like a dead connection); ``data: [DONE]`` ends the stream. A
client that goes away (aiohttp cancels the handler, or a write fails) cancels the session
and so the provider — or detaches it, if it was started with ``on_disconnect: "detach"``.

``GET /api/sessions/{id}/events?resume_token=…`` is the same stream for EventSource clients
after a reconnect, with ``id: <seq>`` lines, honouring ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import orjson
from aiohttp import web

from server.config import Config
from server.errors import ErrorCode, ProtocolError, TokenmuxError
from server.protocol.envelope import Envelope, Resume
from server.protocol.sse import DONE, KEEPALIVE, sse_data, sse_event_with_id
from server.protocol.validate import validate_session_id
from server.sessions.follower import Follower
from server.sessions.manager import Resumed, SessionScope
from server.sessions.outbox import Outbox
from server.state import CONFIG, MANAGER
from server.transports.http import json_error, read_start

__all__ = ["SSE_HEADERS", "handle_events", "handle_stream"]

logger = logging.getLogger(__name__)

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class _SlowConsumer(Exception):
    pass


class SseChannel:
    """One SSE response: its outbox and the loop that writes what the session queues."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._wake = asyncio.Event()
        self._overflowed = False
        self.outbox = Outbox(
            merge_bytes=config.limits.outbox_merge_bytes,
            max_bytes=config.limits.outbox_max_bytes,
            on_ready=self._wake.set,
            on_overflow=self._on_overflow,
        )

    async def pump(
        self, request: web.Request, session: Resumed, frame: Callable[[Envelope], bytes]
    ) -> web.StreamResponse:
        """Write the session's events until its stream_end, then ``[DONE]``."""
        response = web.StreamResponse(headers=SSE_HEADERS)
        scope = session.scope
        try:
            await response.prepare(request)
            ended = not session.live and not len(self.outbox)
            while not ended:
                try:
                    async with asyncio.timeout(self._config.sse.keepalive_s):
                        await self._wake.wait()
                except TimeoutError:
                    await response.write(KEEPALIVE)
                    continue
                self._wake.clear()
                if self._overflowed:
                    raise _SlowConsumer
                batch = self.outbox.drain()
                await response.write(b"".join(frame(event) for event in batch))
                ended = any(event["type"] == "stream_end" for event in batch)
            await response.write(DONE)
            await response.write_eof()
        except (ConnectionError, _SlowConsumer) as exc:
            logger.info("sse client of session %s went away: %r", session.id, exc)
        finally:
            # Runs on a normal end (no-op), a failed write, and when aiohttp cancels the
            # handler because the client disconnected: no session outlives its reader
            # unless it asked to be detached.
            self.outbox.close()
            if session.live and session.scope is scope:
                scope.abandon(session)
                if session.scope is scope:  # cancelled, not detached: wait for its end
                    await scope.wait(session)
        return response

    def _on_overflow(self) -> None:
        self._overflowed = True
        self._wake.set()


def _data_frame(event: Envelope) -> bytes:
    return sse_data(orjson.dumps(event))


def _id_frame(event: Envelope) -> bytes:
    return sse_event_with_id(event["seq"], orjson.dumps(event))


async def handle_stream(request: web.Request) -> web.StreamResponse:
    """POST /api/stream."""
    channel = SseChannel(request.app[CONFIG])
    try:
        start = await read_start(request)
        # Refusals happen here, before any byte of the stream is sent.
        session = request.app[MANAGER].http.start(start, channel.outbox)
    except TokenmuxError as exc:
        return json_error(exc)
    return await channel.pump(request, session, _data_frame)


async def handle_events(request: web.Request) -> web.StreamResponse:
    """GET /api/sessions/{session_id}/events?resume_token=…: resume as EventSource."""
    channel = SseChannel(request.app[CONFIG])
    scope: SessionScope = request.app[MANAGER].http
    try:
        resume = _resume_request(request)
        session = scope.resume(resume, channel.outbox)
        if isinstance(session, Follower):  # runs on another node: refused there, or not
            await session.accepted()
    except TokenmuxError as exc:
        return json_error(exc)
    return await channel.pump(request, session, _id_frame)


def _resume_request(request: web.Request) -> Resume:
    session_id = validate_session_id(request.match_info["session_id"], "session_id")
    token = request.query.get("resume_token", "")
    if not token:
        raise ProtocolError("resume_token: is required", code=ErrorCode.INVALID_FIELD)
    last = request.headers.get("Last-Event-ID", request.query.get("after_seq", "-1"))
    try:
        after_seq = int(last)
    except ValueError:
        raise ProtocolError(
            "Last-Event-ID: must be an integer seq", code=ErrorCode.INVALID_FIELD
        ) from None
    if after_seq < -1:
        raise ProtocolError("Last-Event-ID: must be -1 or more", code=ErrorCode.INVALID_FIELD)
    return Resume(session=session_id, resume_token=token, after_seq=after_seq)
