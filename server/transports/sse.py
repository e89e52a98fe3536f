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
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from server.errors import ErrorCode, ProtocolError, TokenmuxError
from server.logs import EVENTS, bind_request_id, log_events
from server.protocol.encoding import Encoder
from server.protocol.envelope import Resume, Watch
from server.protocol.sse import KEEPALIVE
from server.protocol.sse_data import SseDataEncoder
from server.protocol.sse_ids import SseIdEncoder
from server.protocol.validate import validate_session_id
from server.sessions.follower import Follower
from server.sessions.manager import Resumed
from server.sessions.outbox import Outbox
from server.state import CONFIG, MANAGER, SSE_STREAMS, TALLIES
from server.transports.access import refusal
from server.transports.aiohttp_private import ChunkedBody
from server.transports.http_common import json_error, read_start
from server.transports.sse_streams import OpenStream, SseStreams

__all__ = [
    "SSE_HEADERS",
    "SseChannel",
    "handle_events",
    "handle_stream",
    "sse_keepalive",
]

logger = logging.getLogger(__name__)

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class _Overflow(Exception):
    pass


async def sse_keepalive(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the app's SseStreams and its keep-alive timer."""
    streams = app[SSE_STREAMS] = SseStreams(app[CONFIG].sse.keepalive_s)
    timer = asyncio.create_task(streams.run(), name="sse keepalive")
    yield
    timer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await timer


class SseChannel(OpenStream):
    """One SSE response: its outbox, and the writing of what its session queues.

    Until the response is prepared, a batch queued wakes the handler task. After that, no
    task switch per batch: the session queues, a ``call_soon`` callback (``flush``,
    scheduled once per batch) has the stream's encoder make the bytes and writes them
    (ChunkedBody: the bytes ``response.write()`` would send). Whatever needs waiting (a
    paused transport, the end of the stream, an overflow, a keep-alive, a failure) wakes
    the handler task instead. One object per stream for all of it (and for the app's
    OpenStream): every open stream holds it.
    """

    __slots__ = ("body", "encoder", "ended", "failure", "scheduled")

    outbox: Outbox
    encoder: Encoder  # set with body, by pump()

    def __init__(self, request: web.Request) -> None:
        super().__init__()
        config = request.app[CONFIG]
        self.outbox = Outbox(
            merge_bytes=config.limits.outbox_merge_bytes,
            max_bytes=config.limits.outbox_max_bytes,
            on_ready=self.ready,
            on_overflow=self.overflow,
        )
        self.body: ChunkedBody | None = None  # while the response is prepared and open
        self.scheduled = False
        self.ended = False
        self.failure: Exception | None = None  # what broke flush(); the handler ends on it

    def ready(self) -> None:
        """The outbox's on_ready: events are queued (called once per batch)."""
        if self.body is None:
            self.set()  # not streaming yet: the handler writes after prepare()
        elif not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        body = self.body
        if body is None:  # the stream ended before this callback ran
            return
        if self.overflowed or body.paused or body.closing or self.failure is not None:
            self.set()  # the handler raises, drains, or notices the closed socket
            return
        batch = self.outbox.drain()
        if not batch:
            return
        try:
            data = self.encoder.encode(batch)
            # An encoder may have nothing to say for a batch (a format without an event for
            # each envelope); an empty chunk would be the chunked body's terminator.
            if data:
                body.write(data)
                self.last_write = time.monotonic()
        except Exception as exc:  # our own failure: a loop callback must not raise
            self.failure = exc
            self.outbox.close()
            self.set()
            return
        if EVENTS.isEnabledFor(logging.DEBUG):
            log_events("sse", batch)
        if batch[-1]["type"] == "stream_end":
            self.ended = True
            self.set()

    async def pump(
        self,
        request: web.Request,
        session: Resumed,
        encoder: Encoder,
        headers: Mapping[str, str] = SSE_HEADERS,
    ) -> web.StreamResponse:
        """Write the session's events as ``encoder`` makes them until its stream_end, then
        the encoder's trailer (``data: [DONE]``). ``headers``: a format may add its own."""
        outbox, scope = self.outbox, session.scope
        failed = False
        response = web.StreamResponse(headers=headers)
        streams = request.app[SSE_STREAMS].open
        streams.add(self)
        try:
            await response.prepare(request)
            self.encoder = encoder
            body = self.body = ChunkedBody(request, response)
            self.flush()  # what was queued before the headers went out
            # A resumed session that had ended with nothing left to replay is done at once.
            while not self.ended and (session.live or len(outbox)):
                await self.wait()
                self.clear()
                if self.failure is not None:
                    raise self.failure
                if self.overflowed:
                    raise _Overflow
                if body.closing:
                    raise ConnectionResetError("the client went away")
                if self.ping:
                    self.ping = False
                    await response.write(KEEPALIVE)
                    self.last_write = time.monotonic()
                if body.paused:
                    outbox.paused = True  # merging starts while the client lags
                    await body.drain()
                    outbox.paused = False
                self.flush()
            tail = encoder.finish()
            if tail:
                await response.write(tail)
            await response.write_eof()
        except (ConnectionError, _Overflow) as exc:
            logger.info("sse client of session %s went away: %r", session.id, exc)
        except Exception as exc:
            # Our own failure (an encoder that raised, a broken write). The body cannot go
            # on in order: drop the connection without the body's end, so the client sees a
            # broken stream (no [DONE]), never a clean one; the session ends with an error.
            logger.error("sse stream of session %s failed: closing it", session.id, exc_info=exc)
            failed = True
            if request.transport is not None:
                request.transport.close()
        finally:
            # Runs on a normal end (no-op), a failed write, and when aiohttp cancels the
            # handler because the client disconnected: no session outlives its reader
            # unless it asked to be detached.
            outbox.close()
            self.body = None
            streams.discard(self)
            request.app[TALLIES].sse.merged += outbox.merged
            # Taken over by a later request (an EventSource reconnecting before this
            # connection was seen to die): the session is that request's now. All HTTP
            # requests share one scope, so the scope alone cannot tell.
            if session.live and session.scope is scope and session.writes_to(outbox):
                scope.abandon(session, "error" if failed else "cancelled")
                if session.scope is scope:  # cancelled, not detached: wait for its end
                    await scope.wait(session)
        return response


async def handle_stream(request: web.Request) -> web.StreamResponse:
    """POST /api/stream."""
    refused = refusal(request)
    if refused is not None:
        return refused
    bind_request_id(request)
    channel = SseChannel(request)
    try:
        start = await read_start(request)
        # Refusals happen here, before any byte of the stream is sent.
        session = request.app[MANAGER].http.start(start, channel.outbox)
    except TokenmuxError as exc:
        return json_error(exc)
    return await channel.pump(request, session, SseDataEncoder(request.app[TALLIES].sse))


async def handle_events(request: web.Request) -> web.StreamResponse:
    """GET /api/sessions/{session_id}/events?resume_token=…: resume as EventSource."""
    refused = refusal(request)
    if refused is not None:
        return refused
    bind_request_id(request)
    channel = SseChannel(request)
    manager = request.app[MANAGER]
    # ``&watch=1`` reads as one more reader (PROTOCOL.md §12), in a scope of its own: two
    # tabs watching one session are two readers, not one id live twice.
    scope = manager.open_scope(max_sessions=None) if _watching(request) else manager.http
    try:
        try:
            resume = _resume_request(request)
            if scope is manager.http:
                session = scope.resume(resume, channel.outbox)
            else:
                watch = Watch(resume.session, resume.resume_token, resume.after_seq)
                session = scope.watch(watch, channel.outbox)
            if isinstance(session, Follower):  # runs on another node: refused there, or not
                await session.accepted()
        except TokenmuxError as exc:
            return json_error(exc)
        if not session.live and not len(channel.outbox):
            # Ended, nothing missed: 204 is the one answer on which EventSource stops
            # reconnecting (a 200 with [DONE] would have it poll until the token expires).
            return web.Response(status=204)
        return await channel.pump(request, session, SseIdEncoder(request.app[TALLIES].sse))
    finally:
        if scope is not manager.http:
            await scope.close()  # the reader leaves; the session goes on


def _watching(request: web.Request) -> bool:
    value = request.query.get("watch", "0")
    if value not in ("0", "1"):
        raise web.HTTPBadRequest(text="watch: must be 0 or 1")
    return value == "1"


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
