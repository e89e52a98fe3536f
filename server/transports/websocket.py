"""GET /ws: many sessions over one WebSocket (PROTOCOL.md section 3).

The handler task is the only reader: it decodes, validates and hands each message to the
connection's SessionScope, synchronously. Every outgoing event (session events and
connection-level ones alike) goes through the connection's Outbox, drained by one writer
task, so frames never interleave and a slow reader cannot make session tasks block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Any, assert_never

from aiohttp import WSMsgType, web

from server import __version__
from server.config import Config
from server.errors import (
    AbusiveClient,
    ConnectionEnded,
    ErrorCode,
    ProtocolError,
    RateLimited,
    SlowConsumer,
    TokenmuxError,
    close_code,
    error_payload,
)
from server.logs import EVENTS, bind_request_id, log_events
from server.metrics import TransportTally
from server.protocol.codec import CODECS, JSON_SUBPROTOCOL, Codec
from server.protocol.encoding import Encoder
from server.protocol.envelope import (
    PROTOCOL_VERSION,
    Cancel,
    EventType,
    Ping,
    Resume,
    Start,
    Unwatch,
    Watch,
    connection_event,
)
from server.protocol.validate import InputLimits, message_ref, parse_client_message
from server.ratelimit import ClientLimits, TokenBucket
from server.sessions.manager import SessionManager, SessionScope
from server.sessions.outbox import Outbox
from server.state import CLIENTS, CONFIG, CONNECTIONS, MANAGER, TALLIES
from server.transports.access import check_websocket, without_bearer_subprotocols
from server.transports.aiohttp_private import WsTransport
from server.transports.http_common import client_address, json_error

__all__ = ["WsConnection", "handle_websocket"]

logger = logging.getLogger(__name__)

# A frame over this multiple of max_message_bytes is refused by aiohttp itself (close
# 1009); up to it, an oversize frame is answered with error{message_too_large} and the
# connection lives on. aiohttp refuses a frame of max_msg_size bytes, hence the + 1.
HARD_FRAME_FACTOR = 4
CLOSE_TIMEOUT_S = 2.0  # a close handshake that takes longer ends in transport.abort()
_LINGER_RESET = struct.pack("ii", 1, 0)  # struct linger {l_onoff: 1, l_linger: 0}: close() resets


class WsConnection:
    """One client socket: its codec and encoder, its sessions, its outbox and its writer."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        codec: Codec,
        encoder: Encoder,
        manager: SessionManager,
        config: Config,
        transport: asyncio.BaseTransport | None,
        tally: TransportTally | None = None,
    ) -> None:
        self.ws = ws
        self.tally = tally if tally is not None else TransportTally()
        self._transport = transport
        self.codec = codec
        self.encoder = encoder
        self.manager = manager
        self.config = config
        self.scope: SessionScope = manager.open_scope()
        self.limits = InputLimits(
            max_prompt_chars=config.limits.max_prompt_chars,
            max_messages=config.limits.max_messages,
        )
        self._wake = asyncio.Event()
        self.outbox = Outbox(
            merge_bytes=config.limits.outbox_merge_bytes,
            max_bytes=config.limits.outbox_max_bytes,
            on_ready=self._wake.set,
            on_overflow=self._on_overflow,
        )
        # Why the server ends this connection (close_code() picks the code), once it does.
        self._ending: BaseException | None = None
        self._writer: asyncio.Task[None] | None = None
        rates = config.rate_limits
        self._messages = TokenBucket(rates.messages_per_s, rates.message_burst)
        self._refused_in_a_row = 0
        self.client = "unknown"
        self.clients: ClientLimits | None = None

    # Public methods.

    async def serve(self) -> None:
        """Run the connection until the socket closes; then end its sessions.

        Sessions that asked to be detached are detached; the others are cancelled, or, if
        the writer failed, end with ``error{internal}`` and ``stream_end{error}``."""
        self._writer = asyncio.create_task(self._write_loop(), name="ws writer")
        self.send_event(EventType.READY, self._ready_data())
        try:
            async for frame in self.ws:
                if frame.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    self._receive(frame.data)
                elif frame.type is WSMsgType.ERROR:
                    break
                if self._ending is not None:
                    # A close is decided (abuse, overflow): answer nothing more. The writer
                    # sends what is queued, then closes; aiohttp's close() reads and drops
                    # the frames still waiting until the peer's close frame.
                    bound_s = self.config.limits.send_timeout_s + CLOSE_TIMEOUT_S
                    await asyncio.wait({self._writer}, timeout=bound_s)
                    break
        finally:
            # aiohttp cancels this handler when the client's TCP connection drops, which
            # may be in the middle of this cleanup: it runs as its own task to the end.
            ending = asyncio.create_task(self._end(), name="ws end")
            try:
                await asyncio.shield(ending)
            except asyncio.CancelledError:
                await asyncio.wait({ending})
                # That cancel only said the client is gone, and the cleanup is done: end
                # the request normally (aiohttp logs it). Any other cancel goes on.
                handler = asyncio.current_task()
                if handler is None or handler.uncancel() > 0:
                    raise

    def send_event(self, type_: EventType, data: dict[str, Any]) -> None:
        """Queue a connection-level event."""
        self.outbox.send(connection_event(type_, data, int(self.manager.clock() * 1000)))

    async def close(self, reason: ConnectionEnded, *, timeout_s: float) -> None:
        """Flush what is queued, then close with ``close_code(reason)``; abort if that
        takes too long."""
        self._ending = reason
        self._wake.set()
        writer = self._writer
        if writer is None:
            return
        done, _ = await asyncio.wait({writer}, timeout=timeout_s)
        if not done:
            self._abort(reset=True)

    # Reading.

    def _receive(self, payload: str | bytes) -> None:
        obj: Any = None
        try:
            if len(payload) > self.config.limits.max_message_bytes:
                self._check_rate()
                raise ProtocolError(
                    f"message larger than {self.config.limits.max_message_bytes} bytes",
                    code=ErrorCode.MESSAGE_TOO_LARGE,
                )
            obj = self.codec.decode(payload)  # first, so even a refusal can name its message
            self._check_rate()
            message = parse_client_message(obj, self.limits)
            match message:
                case Start():
                    if self.clients is not None:
                        self.clients.check_start(self.client)
                    self.scope.start(message, self.outbox)
                case Cancel(session):
                    self.scope.cancel(session)
                case Resume():
                    self.scope.resume(message, self.outbox, lambda e: self._send_error(e, obj))
                case Watch():
                    self.scope.watch(message, self.outbox, lambda e: self._send_error(e, obj))
                case Unwatch(session):
                    self.scope.unwatch(session)
                case Ping(data):
                    self.send_event(EventType.PONG, data)
                case _:
                    assert_never(message)
        except Exception as exc:  # every bad input gets its error; a bug gets `internal`
            self._send_error(exc, obj)

    def _check_rate(self) -> None:
        """Spend a message token; a client refused too often in a row is closed (1008)."""
        wait_s = self._messages.take()
        if not wait_s:
            self._refused_in_a_row = 0
            return
        self._refused_in_a_row += 1
        if self._refused_in_a_row >= self.config.rate_limits.abuse_close_after:
            logger.warning("closing a connection that kept sending past its rate limit")
            self._ending = AbusiveClient()
        raise RateLimited("too many messages on this connection", retry_after_s=wait_s)

    def _send_error(self, exc: Exception, obj: Any) -> None:
        payload = error_payload(exc)
        ref = message_ref(obj)
        if ref:
            payload["ref"] = ref
        logger.debug("< rejected %s: %s", ref or "frame", payload["code"])
        self.send_event(EventType.ERROR, payload)

    def _ready_data(self) -> dict[str, Any]:
        limits, rates, resume = self.config.limits, self.config.rate_limits, self.config.resume
        return {
            "protocol": PROTOCOL_VERSION,
            "server": f"tokenmux/{__version__}",
            "encoding": self.codec.name,
            "providers": self.manager.providers.names,
            "default_provider": self.manager.providers.default,
            # Each provider's type, so a page sends the simulator's knobs to it alone.
            "provider_types": {
                name: entry.type
                for name, entry in self.config.providers.entries.items()
                if name in self.manager.providers.names
            },
            "limits": {
                "max_sessions": limits.max_sessions_per_connection,
                "max_message_bytes": limits.max_message_bytes,
                "max_prompt_chars": limits.max_prompt_chars,
                "max_messages": limits.max_messages,
                "max_session_s": limits.max_session_s,
                "messages_per_s": rates.messages_per_s,
                "message_burst": rates.message_burst,
                "starts_per_s": rates.starts_per_s,
                "start_burst": rates.start_burst,
            },
            "resume": {
                "enabled": resume.enabled,
                "grace_s": resume.grace_s,
                "buffer_events": resume.buffer_events,
            },
        }

    # Writing: only the writer task touches the socket's send side.

    async def _write_loop(self) -> None:
        # One pass per wake-up: everything queued since the last pass is encoded, framed
        # and handed to the transport in ONE write (one send() instead of one per event),
        # and the loop only waits when the transport is paused. No per-event awaits.
        writer = WsTransport(self.ws)
        encode, wake, outbox = self.encoder.encode, self._wake, self.outbox
        timeout_s = self.config.limits.send_timeout_s
        try:
            while True:
                await wake.wait()
                wake.clear()
                batch = outbox.drain()
                if batch:
                    data = encode(batch)
                    if data:  # a format may have nothing to say for a batch
                        writer.write(data)
                    if EVENTS.isEnabledFor(logging.DEBUG):
                        log_events("ws", batch)
                    # Hold nothing while idle: a sleeping writer that kept its last batch
                    # would pin one event per session, and its bytes.
                    del batch, data
                    if writer.paused:
                        outbox.paused = True  # merging starts while the client lags
                        async with asyncio.timeout(timeout_s):
                            await writer.drain()
                        outbox.paused = False
                if self._ending is not None and not len(outbox):
                    tail = self.encoder.finish()
                    if tail:
                        writer.write(tail)
                    await self._close_now(self._ending)
                    return
        except TimeoutError:
            # No close frame: the peer does not read, and aiohttp's drain is now broken by
            # the cancelled send anyway. Abort, so the reader sees the end at once.
            logger.warning("aborting a connection that did not read for %.1fs", timeout_s)
            self.outbox.close()
            self._abort(reset=True)
        except ConnectionError as exc:
            # The peer went away mid-write (ClientConnectionResetError on a closing
            # transport); the reader will see the close.
            logger.debug("write failed: %r", exc)
        except Exception as exc:
            # Our own failure (an encoder that raised, a broken write): nothing more can be
            # sent in order. Close with 1011; serve() then ends or detaches every session.
            logger.error("the connection's writer failed: closing it", exc_info=exc)
            self._ending = exc
            await self._close_now(exc)
        finally:
            self.tally.merged += outbox.merged  # folded in once; open outboxes are read live
            outbox.merged = 0

    def _on_overflow(self) -> None:
        logger.warning("outbox over %d bytes: closing a slow consumer", self.outbox.queued_bytes)
        self._ending = SlowConsumer()
        self._wake.set()

    async def _close_now(self, reason: BaseException) -> None:
        """Close with ``close_code(reason)``, then abort the transport.

        After a completed close handshake the abort is a no-op. After a failed one (the
        peer never read our close frame) asyncio would keep the socket open until its
        buffer drains, which for a peer that does not read is never.
        """
        self.outbox.close()
        handshake_done = False
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.ws.close(code=close_code(reason))
                handshake_done = True
        self._abort(reset=not handshake_done)

    def _abort(self, *, reset: bool = False) -> None:
        """Drop the connection now; ``reset`` for a peer that stopped reading.

        close() waits for the peer; a peer that never reads would hold the socket open.
        Aborting alone is not enough for such a peer: the kernel keeps the unsent bytes and
        queues the FIN behind them, so it never learns the end. SO_LINGER {1, 0} makes the
        close send a reset at once.
        """
        transport = self._transport
        if transport is None:
            return
        if reset:
            sock = transport.get_extra_info("socket")
            with contextlib.suppress(OSError, AttributeError):  # already closed
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        # Not isinstance(asyncio.Transport): uvloop's transports do not subclass it.
        abort = getattr(transport, "abort", None)
        if abort is not None:
            abort()

    async def _end(self) -> None:
        """End the sessions (or detach them), then the writer task, whatever fails first."""
        failed = self._ending is not None and not isinstance(self._ending, ConnectionEnded)
        try:
            await self.scope.close("error" if failed else "cancelled")
        finally:
            await self._stop_writer()

    async def _stop_writer(self) -> None:
        self.outbox.close()
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.wait({self._writer})  # its outcome is its own: nothing to raise


async def handle_websocket(request: web.Request) -> web.StreamResponse:
    """GET /ws."""
    bind_request_id(request)
    config = request.app[CONFIG]
    clients = request.app[CLIENTS]
    address = client_address(request)
    try:
        check_websocket(request)  # before the upgrade: a refused client gets no socket
        clients.open_connection(address)
    except TokenmuxError as exc:
        return json_error(exc)
    try:
        return await _serve_websocket(request, config, address)
    finally:
        clients.close_connection(address)


async def _serve_websocket(
    request: web.Request, config: Config, address: str
) -> web.StreamResponse:
    ws = web.WebSocketResponse(
        protocols=tuple(CODECS),
        heartbeat=config.websocket.heartbeat_s or None,
        max_msg_size=config.limits.max_message_bytes * HARD_FRAME_FACTOR + 1,
        compress=False,
    )
    _limit_send_buffer(request, config.limits.socket_send_buffer_bytes)
    await ws.prepare(without_bearer_subprotocols(request))
    codec = CODECS[ws.ws_protocol or JSON_SUBPROTOCOL]
    tally = request.app[TALLIES].ws
    connection = WsConnection(
        ws, codec, codec.encoder(tally), request.app[MANAGER], config, request.transport, tally
    )
    connection.client = address
    connection.clients = request.app[CLIENTS]
    connections = request.app[CONNECTIONS]
    connections.add(connection)
    try:
        await connection.serve()
    finally:
        connections.discard(connection)
    return ws


def _limit_send_buffer(request: web.Request, size: int) -> None:
    """Cap the kernel's send buffer: autotuning lets it absorb megabytes for a peer that
    does not read, which hides the stall from our send deadline and outbox cap."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if size and sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
