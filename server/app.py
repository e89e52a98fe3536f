"""The aiohttp application: routes, shared state, start-up and shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from server.config import Config
from server.errors import CloseCode
from server.protocol.envelope import EventType
from server.providers.registry import build_registry
from server.sessions.manager import SessionManager
from server.state import CONFIG, CONNECTIONS, MANAGER, Connections
from server.transports.http import handle_cancel, handle_completion, handle_health
from server.transports.metrics import install_metrics
from server.transports.sse import handle_stream, sse_keepalive
from server.transports.websocket import WsConnection, handle_websocket

__all__ = ["RunningServer", "make_app", "start_server"]

logger = logging.getLogger(__name__)


def make_app(config: Config) -> web.Application:
    """Build the application; providers and the session manager start with it."""
    app = web.Application(client_max_size=config.limits.max_message_bytes)
    app[CONFIG] = config
    app[CONNECTIONS] = Connections()
    app.cleanup_ctx.append(_sessions)
    app.cleanup_ctx.append(sse_keepalive)
    app.on_shutdown.append(_close_connections)
    app.router.add_get("/ws", handle_websocket)
    app.router.add_post("/api/stream", handle_stream)
    app.router.add_post("/api/completion", handle_completion)
    app.router.add_post("/api/sessions/{session_id}/cancel", handle_cancel)
    app.router.add_get("/healthz", handle_health)
    install_metrics(app)  # after _sessions: its listener needs the manager
    return app


async def _sessions(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    providers = build_registry(config.providers)
    app[MANAGER] = SessionManager(
        providers, max_sessions_per_connection=config.limits.max_sessions_per_connection
    )
    yield
    await app[MANAGER].shutdown()
    await providers.aclose()


async def _close_connections(app: web.Application) -> None:
    """Say goaway, end every session with reason shutdown, then close sockets with 1001."""
    connections: list[WsConnection] = [*app[CONNECTIONS]]
    timeout_s = app[CONFIG].server.shutdown_timeout_s
    for connection in connections:
        connection.send_event(EventType.GOAWAY, {"reason": "shutdown", "drain_ms": 0})
    await app[MANAGER].shutdown()
    # All at once and bounded: one by one, non-reading clients would hold the stop for long.
    await asyncio.gather(
        *(c.close(CloseCode.GOING_AWAY, timeout_s=timeout_s / 2) for c in connections)
    )


@dataclass
class RunningServer:
    """A started server: its URL, and how to stop it."""

    runner: web.AppRunner
    url: str

    @property
    def app(self) -> web.Application:
        return self.runner.app

    async def aclose(self) -> None:
        await self.runner.cleanup()


async def start_server(config: Config) -> RunningServer:
    """Start serving ``config`` and return once the socket listens (port 0 picks one)."""
    app = make_app(config)
    runner = web.AppRunner(
        app,
        handler_cancellation=True,  # a client that disconnects cancels its handler (SSE)
        shutdown_timeout=config.server.shutdown_timeout_s,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.server.host, config.server.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    if ":" in host:
        host = f"[{host}]"
    return RunningServer(runner, f"http://{host}:{port}")
