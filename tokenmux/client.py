"""The asyncio client: many sessions over one WebSocket, with reconnect and resume.

One connection task owns the socket: it connects, reads every frame and routes it to its
session, and after an unexpected drop reconnects with backoff and resumes every session
that has a resume token (PROTOCOL.md section 6). Sessions drop events whose ``seq`` they
have already seen, so a resume never repeats anything; the server replays from the last
``seq`` seen, so nothing is missed. One writer task per connection sends what the client
queues, so a message can be queued from synchronous code (a signal handler) and frames
never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

import aiohttp

from tokenmux.codec import Codec, Encoding, codec_for
from tokenmux.errors import (
    AuthError,
    BadResponse,
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    RateLimited,
    RequestError,
    ServerError,
    TokenmuxError,
    error_from_payload,
)
from tokenmux.events import (
    ContentChunk,
    ContentComplete,
    ErrorEvent,
    Event,
    GoAway,
    Metadata,
    Ready,
    ReasoningChunk,
    StreamEnd,
    StreamStart,
    Usage,
    parse_event,
    parse_ready,
)

__all__ = ["Client", "Session"]

logger = logging.getLogger("tokenmux.client")

_MAX_FRAME_BYTES = 64 * 1024 * 1024  # a long answer's content_complete repeats all its text
_CLOSE_WAIT_S = 2.0  # close(): how long live sessions may take to acknowledge their cancel


class Session:
    """One generation: iterate it for its events, or await ``text()``.

    Made by ``Client.start()`` and ``Client.resume()``. Its events can be iterated once;
    they end with ``StreamEnd``. An ``ErrorEvent`` is yielded like any other event (and
    ``text()`` raises it); iteration itself raises only when the session is lost without
    its ``StreamEnd`` (``ConnectionLost``, ``ClientClosed``, ``BadResponse``).
    """

    def __init__(self, client: Client, session_id: str) -> None:
        self.id = session_id
        self.provider: str | None = None
        self.model: str | None = None
        self.resume_token: str | None = None
        self.watching = False  # read with ``watch``: one more reader, not the owner
        self.last_seq = -1  # the highest seq received
        self.content = ""  # the text received so far
        self.reasoning = ""  # the reasoning received so far
        self.usage: Usage | None = None
        self.end: StreamEnd | None = None
        self.error: TokenmuxError | None = None
        self._client = client
        self._events: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._ended = asyncio.Event()
        self._iterating = False
        self._cancel_wanted = False
        self._cancel_refused: TokenmuxError | None = None
        self._cancel_answered = asyncio.Event()  # the end, or a refusal of the cancel
        # Settled by stream_start (a start) or by the ping after a resume; failed by a refusal.
        self._attached: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        state = self.end.reason if self.end else ("failed" if self.error else "live")
        return f"<Session {self.id} {state} seq={self.last_seq}>"

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def __aiter__(self) -> AsyncIterator[Event]:
        if self._iterating:
            raise RuntimeError(f"session {self.id} is already being iterated")
        self._iterating = True
        while True:
            while not self._events:
                if self.ended:
                    if self.end is None and self.error is not None:
                        raise self.error
                    return
                self._wake.clear()
                await self._wake.wait()
            yield self._events.popleft()

    async def result(self) -> StreamEnd:
        """Wait for the end. Raises the session's error unless it completed or was cancelled."""
        await self._ended.wait()
        if not self._iterating:
            self._events.clear()  # nobody will read them now
        if self.end is not None and self.end.reason in ("complete", "cancelled"):
            return self.end
        assert self.error is not None
        raise self.error

    async def text(self) -> str:
        """The whole reply (the text so far, if cancelled). Raises the session's error."""
        await self.result()
        return self.content

    async def cancel(self) -> StreamEnd | None:
        """Cancel, and return once the server acknowledged it with ``stream_end``.

        Idempotent; returns at once if the session has ended (its ``StreamEnd`` then, or
        None when it was lost without one). A refused cancel (rate limited) raises."""
        if not self.ended:
            self._cancel_wanted = True
            self._cancel_refused = None
            self._cancel_answered.clear()
            self._client._post_cancel(self)
            await self._cancel_answered.wait()
            if self._cancel_refused is not None and not self.ended:
                raise self._cancel_refused
        return self.end

    # Called by the client.

    def _receive(self, envelope: Mapping[str, Any]) -> None:
        seq = envelope.get("seq")
        if self.ended or (isinstance(seq, int) and seq <= self.last_seq):
            return  # a replayed duplicate, or a straggler after the end
        try:
            event = parse_event(envelope)
        except BadResponse as exc:
            self._fail(exc)
            return
        self.last_seq = event.seq
        match event:
            case StreamStart():
                self.provider, self.model = event.provider, event.model
                self.resume_token = event.resume_token
                if not self._attached.done():
                    self._attached.set_result(None)
            case ContentChunk():
                self.content += event.content
            case ReasoningChunk():
                self.reasoning += event.content
            case Metadata():
                self.usage = event.usage or self.usage
                if not event.recovered and event.content_so_far is not None:
                    self.content = event.content_so_far
            case ContentComplete():
                self.content = event.total_content
            case ErrorEvent():
                self.error = event.exception()
        self._events.append(event)
        self._wake.set()
        if isinstance(event, StreamEnd):
            self._finish(event)

    def _finish(self, end: StreamEnd) -> None:
        self.end = end
        self.usage = end.usage or self.usage
        if end.reason not in ("complete", "cancelled") and self.error is None:
            code = "shutting_down" if end.reason == "shutdown" else end.reason
            self.error = ServerError(code, f"the session ended: {end.reason}", session=self.id)
        self._settle()

    def _fail(self, error: TokenmuxError) -> None:
        """End without a stream_end: refused, lost or closed."""
        if self.ended:
            return
        error.session = error.session or self.id
        self.error = error
        if not self._attached.done():
            self._attached.set_exception(error)
            self._attached.exception()  # retrieved: a refusal nobody awaits is not logged
        self._settle()

    def _refuse_cancel(self, error: TokenmuxError) -> None:
        self._cancel_refused = error
        self._cancel_answered.set()

    def _settle(self) -> None:
        self._ended.set()
        self._wake.set()
        self._cancel_answered.set()
        self._client._forget(self)


class Client:
    """A tokenmux WebSocket client; use ``async with Client(url) as client:``.

    ``url`` is the server (``http://host:port``) or its socket (``ws://host:port/ws``).
    With ``reconnect`` (the default) sessions are started with ``on_disconnect: "detach"``,
    and after an unexpected drop the client reconnects with backoff and resumes them for up
    to ``resume_timeout_s`` (default: the server's ``resume.grace_s``).
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        token: str | None = None,
        encoding: Encoding = "json",
        reconnect: bool = True,
        resume_timeout_s: float | None = None,
        connect_timeout_s: float = 10.0,
        heartbeat_s: float | None = 20.0,
        initial_delay_s: float = 0.1,
        max_delay_s: float = 5.0,
    ) -> None:
        self.url = _socket_url(url)
        self.reconnect = reconnect
        self.ready: Ready | None = None  # the current connection's `ready`
        self.goaway: GoAway | None = None  # the last `goaway` the server sent
        self.sessions: dict[str, Session] = {}  # live sessions by id
        self._codec: Codec = codec_for(encoding)
        self._token = token
        self._resume_timeout_s = resume_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._heartbeat_s = heartbeat_s
        self._delays = (initial_delay_s, max_delay_s)
        self._http: aiohttp.ClientSession | None = None
        self._runner: asyncio.Task[None] | None = None
        self._connected: asyncio.Future[Ready] | None = None
        self._outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._resumable: list[Session] = []  # waiting for the next connection
        self._pings: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._state: Literal["idle", "connecting", "open", "closed"] = "idle"
        self.connections = 0  # sockets opened so far, reconnects included
        self._last_grace_s: object = None  # the server's resume.grace_s, from `ready`

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._state == "open"

    # Public methods.

    async def connect(self) -> Ready:
        """Open the socket (or wait for the one being opened); the server's ``ready``.

        Raises ConnectionFailed, AuthError (401/403 at the handshake) or RateLimited."""
        if self._state == "closed":
            raise ClientClosed("closed", "the client is closed")
        if self._state == "open" and self.ready is not None:
            return self.ready
        if self._runner is None or self._runner.done():
            if self._runner is not None:
                await self._runner  # its end is settled; surfaces nothing but bugs
            self._connected = asyncio.get_running_loop().create_future()
            self._state = "connecting"
            self._runner = asyncio.create_task(self._run(), name="tokenmux connection")
        assert self._connected is not None
        return await asyncio.shield(self._connected)

    async def start(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        provider: str | None = None,
        model: str | None = None,
        system: str | None = None,
        params: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        on_disconnect: Literal["cancel", "detach"] | None = None,
        **extra: Any,
    ) -> Session:
        """Start a session; returns once the server has begun it (``stream_start``).

        ``extra`` goes into ``start.data`` as it is (e.g. ``tools``, ``reasoning``,
        ``chunk_delay_ms``). A refusal raises: RequestError (invalid_field,
        unknown_provider, ...), RateLimited, ServerError (shutting_down), ConnectionLost."""
        if prompt is None and messages is None:
            raise TypeError("start() needs a prompt or messages")
        data: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
        for key, value in (
            ("prompt", prompt),
            ("messages", None if messages is None else [dict(m) for m in messages]),
            ("provider", provider),
            ("model", model),
            ("system", system),
            ("params", None if params is None else dict(params)),
        ):
            if value is not None:
                data[key] = value
        if on_disconnect is None and self.reconnect:
            on_disconnect = "detach"
        if on_disconnect is not None:
            data["on_disconnect"] = on_disconnect
        await self.connect()
        session = self._register(session_id or uuid.uuid4().hex)
        if not self._post({"type": "start", "session": session.id, "data": data}):
            session._fail(ConnectionLost("connection_lost", "the connection dropped"))
        await self._attach(session)
        return session

    async def resume(self, session_id: str, *, token: str, after_seq: int = -1) -> Session:
        """Attach to a running (or recently ended) resumable session, e.g. one started by
        another process: its events after ``after_seq`` are replayed, then the live rest.
        This client takes it over. A wrong token raises AuthError."""
        await self.connect()
        session = self._register(session_id)
        session.resume_token = token
        session.last_seq = after_seq
        if not self._post_resume(session):
            session._fail(ConnectionLost("connection_lost", "the connection dropped"))
        await self._attach(session)
        return session

    async def watch(self, session_id: str, *, token: str, after_seq: int = -1) -> Session:
        """Read a session as one more reader (PROTOCOL.md §12): its events after
        ``after_seq``, then the live rest, while whoever runs it keeps receiving it too.
        Nothing is taken over; closing this client stops reading without cancelling it
        (``session.cancel()`` does end it for everyone). A wrong token raises AuthError.
        A reader that falls behind may get merged chunks: ``seq`` then jumps at a chunk,
        and ``content`` stays whole."""
        await self.connect()
        session = self._register(session_id)
        session.resume_token = token
        session.watching = True
        session.last_seq = after_seq
        if not self._post_resume(session):
            session._fail(ConnectionLost("connection_lost", "the connection dropped"))
        await self._attach(session)
        return session

    async def ping(self, **data: Any) -> dict[str, Any]:
        """Round-trip a ``ping``; the ``pong`` data."""
        await self.connect()
        nonce = uuid.uuid4().hex
        pong: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pings[nonce] = pong
        try:
            if not self._post({"type": "ping", "data": {**data, "nonce": nonce}}):
                raise ConnectionLost("connection_lost", "the connection dropped")
            return await pong
        finally:
            self._pings.pop(nonce, None)

    async def close(self, *, cancel_sessions: bool = True) -> None:
        """Close the socket. Live sessions are cancelled first (waiting briefly for the
        acknowledgements); with ``cancel_sessions=False`` detached ones keep running on the
        server, resumable elsewhere for its grace period. Watched sessions are never
        cancelled by a close. The client cannot be reused."""
        if self._state == "closed":
            return
        # Watched sessions are someone else's: closing the socket just stops reading them.
        owned = [session for session in self.sessions.values() if not session.watching]
        if cancel_sessions and owned and self._state == "open":
            live = owned
            for session in live:
                self._post_cancel(session)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_WAIT_S):
                    for session in live:
                        await session._ended.wait()
        self._state = "closed"
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        closed = ClientClosed("closed", "the client was closed")
        self._fail_all(closed)
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(closed)
            self._connected.exception()
        if self._http is not None:
            await self._http.close()
            self._http = None

    # Sessions.

    def _register(self, session_id: str) -> Session:
        if session_id in self.sessions:
            raise RequestError(
                "duplicate_session", f"session {session_id!r} is live on this client already"
            )
        session = Session(self, session_id)
        self.sessions[session_id] = session
        return session

    async def _attach(self, session: Session) -> None:
        try:
            await asyncio.shield(session._attached)
        except asyncio.CancelledError:
            # The server may have begun it: cancel, so it does not run on unwatched.
            self._post_cancel(session)
            raise

    def _forget(self, session: Session) -> None:
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        with contextlib.suppress(ValueError):
            self._resumable.remove(session)

    def _post_cancel(self, session: Session) -> None:
        if not session.ended and session not in self._resumable:
            self._post({"type": "cancel", "session": session.id})
        # A session waiting to be resumed is cancelled right after its resume.

    def _post_resume(self, session: Session) -> bool:
        resume = {"resume_token": session.resume_token, "after_seq": session.last_seq}
        # The server answers a resume it refuses before anything sent after it, and a
        # good one sends nothing certain (a quiet session): a ping tells them apart.
        kind = "watch" if session.watching else "resume"
        sent = self._post({"type": kind, "session": session.id, "data": resume})
        return sent and self._post({"type": "ping", "data": {"resumed": session.id}})

    def _post(self, message: dict[str, Any]) -> bool:
        """Queue a message for the writer; False when there is no open connection."""
        if self._state != "open":
            return False
        self._outgoing.put_nowait(message)
        return True

    def _fail_all(self, error: TokenmuxError) -> None:
        for session in list(self.sessions.values()):
            session._fail(error)
        for pong in self._pings.values():
            if not pong.done():
                pong.set_exception(error)
                pong.exception()

    # The connection task.

    async def _run(self) -> None:
        """Connect; serve; after a drop, reconnect and resume until the deadline."""
        try:
            ws = await self._open()
        except TokenmuxError as exc:
            self._give_up(exc)
            return
        while True:
            await self._serve(ws)
            if self._state == "closed":
                return
            lost = ConnectionLost(
                "connection_lost", f"the connection to {self.url} closed (code {ws.close_code})"
            )
            if not self._dropped(lost):
                self._give_up(lost)
                return
            reopened = await self._reopen(lost)
            if reopened is None:
                return
            ws = reopened

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                ws = await self._http.ws_connect(
                    self.url,
                    protocols=(self._codec.subprotocol,),
                    headers=headers,
                    heartbeat=self._heartbeat_s,
                    max_msg_size=_MAX_FRAME_BYTES,
                    autoclose=True,
                )
        except aiohttp.WSServerHandshakeError as exc:
            raise _handshake_error(exc, self.url) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ConnectionFailed(
                "connection_failed", f"cannot connect to {self.url}: {exc!r}"
            ) from exc
        if ws.protocol != self._codec.subprotocol:
            await ws.close()
            raise ConnectionFailed(
                "connection_failed", f"{self.url} does not speak {self._codec.subprotocol}"
            )
        self.connections += 1
        return ws

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read until the socket closes; one writer task sends meanwhile."""
        self._outgoing = asyncio.Queue()
        writer = asyncio.create_task(self._write(ws), name="tokenmux writer")
        try:
            async for frame in ws:
                if frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    self._receive(frame.data)
                elif frame.type is aiohttp.WSMsgType.ERROR:
                    break
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            if not ws.closed:  # our close(), or a read error: send the close frame, briefly
                with contextlib.suppress(TimeoutError, aiohttp.ClientError, ConnectionError):
                    async with asyncio.timeout(_CLOSE_WAIT_S):
                        await ws.close()
            if self._state != "closed":
                self._state = "connecting"

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        encode, binary = self._codec.encode, self._codec.binary
        with contextlib.suppress(ConnectionError, RuntimeError):  # the reader sees the end
            while True:
                payload = encode(await self._outgoing.get())
                if binary:
                    await ws.send_bytes(payload)  # type: ignore[arg-type]
                else:
                    await ws.send_str(payload)  # type: ignore[arg-type]

    def _dropped(self, lost: ConnectionLost) -> bool:
        """The socket dropped: keep sessions that can be resumed, fail the rest. False
        when none is kept: then the next call connects afresh, nothing retries meanwhile."""
        self.ready = None
        self._connected = asyncio.get_running_loop().create_future()
        for pong in self._pings.values():
            if not pong.done():
                pong.set_exception(lost)
                pong.exception()
        for session in list(self.sessions.values()):
            if self.reconnect and session.resume_token is not None and session.last_seq >= 0:
                if session not in self._resumable:
                    self._resumable.append(session)
            else:
                session._fail(lost)
        return bool(self._resumable)

    async def _reopen(self, lost: ConnectionLost) -> aiohttp.ClientWebSocketResponse | None:
        """Reconnect with capped, jittered exponential backoff until the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._resume_window_s()
        first, cap = self._delays
        attempt = 0
        while True:
            delay = min(cap, first * 2**attempt) * random.uniform(0.5, 1.0)
            attempt += 1
            if loop.time() + delay > deadline:
                self._give_up(lost)
                return None
            await asyncio.sleep(delay)
            try:
                return await self._open()
            except AuthError as exc:
                self._give_up(exc)
                return None
            except TokenmuxError as exc:
                logger.debug("reconnect attempt %d failed: %s", attempt, exc)

    def _resume_window_s(self) -> float:
        if self._resume_timeout_s is not None:
            return self._resume_timeout_s
        grace = self._last_grace_s
        return float(grace) if isinstance(grace, int | float) and grace > 0 else 30.0

    def _give_up(self, error: TokenmuxError) -> None:
        """No connection now: fail what waits for one; a later call connects afresh."""
        if self._state != "closed":
            self._state = "idle"
        self._resumable.clear()
        self._fail_all(error)
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(error)
            self._connected.exception()

    # Receiving.

    def _receive(self, payload: str | bytes) -> None:
        try:
            envelope = self._codec.decode(payload)
        except ValueError as exc:
            logger.warning("ignoring an undecodable frame: %s", exc)
            return
        if not isinstance(envelope, dict):
            logger.warning("ignoring a frame that is not an event object")
            return
        session_id = envelope.get("session")
        if isinstance(session_id, str) and "seq" in envelope:
            session = self.sessions.get(session_id)
            if session is not None:
                session._receive(envelope)
            return
        data = envelope.get("data")
        data = data if isinstance(data, dict) else {}
        match envelope.get("type"):
            case "ready":
                self._on_ready(data)
            case "pong":
                self._on_pong(data)
            case "goaway":
                drain_ms = data.get("drain_ms")
                self.goaway = GoAway(
                    reason=str(data.get("reason", "")),
                    drain_ms=drain_ms if isinstance(drain_ms, int) else None,
                )
            case "error":
                self._on_error(data)
            case other:
                logger.debug("ignoring a connection-level %r event", other)

    def _on_ready(self, data: dict[str, Any]) -> None:
        try:
            self.ready = parse_ready(data)
        except BadResponse as exc:
            logger.warning("%s", exc)
            return
        self._last_grace_s = self.ready.resume.get("grace_s")
        self._state = "open"
        for session in self._resumable:
            self._post_resume(session)
            if session._cancel_wanted:
                self._post({"type": "cancel", "session": session.id})
        self._resumable.clear()
        if self._connected is not None and not self._connected.done():
            self._connected.set_result(self.ready)

    def _on_pong(self, data: dict[str, Any]) -> None:
        resumed = data.get("resumed")
        if isinstance(resumed, str):
            session = self.sessions.get(resumed)
            if session is not None and not session._attached.done():
                session._attached.set_result(None)
            return
        pong = self._pings.get(str(data.get("nonce")))
        if pong is not None and not pong.done():
            pong.set_result(data)

    def _on_error(self, data: dict[str, Any]) -> None:
        ref = data.get("ref")
        ref = ref if isinstance(ref, dict) else {}
        session = self.sessions.get(str(ref.get("session")))
        error = error_from_payload(data, session=session.id if session else None)
        kind = ref.get("type")
        if session is not None and kind in ("start", "resume", "watch"):
            if kind != "start" and session._attached.done():
                # An automatic resume after a reconnect was refused: what was missed is lost.
                lost = ConnectionLost(
                    "connection_lost", f"the session could not be resumed: {error}"
                )
                lost.__cause__ = error
                session._fail(lost)
            else:
                session._fail(error)
            return
        if kind == "cancel" and session is not None:
            if error.code == "session_not_found":
                session._fail(error)  # not on this connection any more: another took it over
            else:
                session._refuse_cancel(error)
            return
        if kind == "cancel" and error.code == "session_not_found":
            return  # the cancel of a session that has ended here raced its end
        logger.warning("connection error: %s", error)


def _socket_url(url: str) -> str:
    """``http://host:port`` → ``ws://host:port/ws``; a ``ws(s)://`` URL is kept."""
    for http, ws in (("http://", "ws://"), ("https://", "wss://")):
        if url.startswith(http):
            rest = url[len(http) :].rstrip("/")
            return ws + rest + ("" if rest.endswith("/ws") else "/ws")
    if url.startswith(("ws://", "wss://")):
        return url
    raise ValueError(f"not a tokenmux URL: {url!r} (use http://host:port or ws://host:port/ws)")


def _handshake_error(exc: aiohttp.WSServerHandshakeError, url: str) -> TokenmuxError:
    """Refusals before the upgrade are plain HTTP answers (PROTOCOL.md section 4)."""
    status = exc.status
    if status == 401:
        return AuthError("unauthorized", f"{url}: a valid bearer token is required")
    if status == 403:
        return AuthError("forbidden_origin", f"{url}: this origin is not allowed")
    if status == 429:
        return RateLimited("rate_limited", f"{url}: too many connections from this client")
    return ConnectionFailed("connection_failed", f"{url} refused the WebSocket (HTTP {status})")
