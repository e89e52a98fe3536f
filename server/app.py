"""The aiohttp application: routes, shared state, start-up and shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from server.cache import build_cache
from server.config import Config
from server.errors import ConfigError, ServerShutdown
from server.protocol.envelope import EventType
from server.providers.registry import ProviderRegistry, build_registry
from server.ratelimit import ClientLimits
from server.sessions.manager import SessionManager
from server.sessions.store import build_store
from server.state import CLIENTS, CONFIG, CONNECTIONS, MANAGER, Connection, Connections
from server.transports.access import add_cors_headers, add_no_route, checked
from server.transports.http import handle_cancel, handle_completion, handle_health
from server.transports.metrics import install_metrics
from server.transports.openai_routes import add_openai_routes
from server.transports.pages import add_page_routes
from server.transports.sse import handle_events, handle_stream, sse_keepalive
from server.transports.ui_chat import add_ui_chat_routes
from server.transports.websocket import handle_websocket

__all__ = ["RunningServer", "make_app", "start_server", "stop_gracefully"]

logger = logging.getLogger(__name__)


def make_app(config: Config) -> web.Application:
    """Build the application; providers and the session manager start with it."""
    # No middleware (see transports/access.py): every /api/ and /v1/ route checks itself.
    app = web.Application(client_max_size=config.limits.max_message_bytes)
    app[CONFIG] = config
    app[CONNECTIONS] = Connections()
    app[CLIENTS] = ClientLimits(
        starts_per_s=config.rate_limits.starts_per_s,
        start_burst=config.rate_limits.start_burst,
        max_connections=config.limits.max_connections_per_client,
    )
    app.on_response_prepare.append(add_cors_headers)
    app.cleanup_ctx.append(_sessions)
    app.cleanup_ctx.append(sse_keepalive)
    app.on_shutdown.append(stop_gracefully)  # for runners other than start_server()
    app.router.add_get("/ws", handle_websocket)
    app.router.add_post("/api/stream", handle_stream)
    app.router.add_post("/api/completion", checked(handle_completion))
    app.router.add_post("/api/sessions/{session_id}/cancel", checked(handle_cancel))
    app.router.add_get("/api/sessions/{session_id}/events", handle_events)
    app.router.add_get("/healthz", handle_health)
    add_openai_routes(app)
    add_ui_chat_routes(app)
    add_page_routes(app)
    install_metrics(app)  # after _sessions: its listener needs the manager
    add_no_route(app)  # last: it matches every path under /api/ and /v1/
    return app


async def _sessions(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    providers = await asyncio.to_thread(_build_providers, config)
    store = build_store(
        config.store, grace_s=config.resume.grace_s, buffer_events=config.resume.buffer_events
    )
    manager = SessionManager(providers, limits=config.limits, resume=config.resume, store=store)
    app[MANAGER] = manager
    await store.start(manager.on_control)
    try:
        yield
    finally:
        await manager.shutdown()
        await store.aclose()
        await providers.aclose()


def _build_providers(config: Config) -> ProviderRegistry:
    """The providers behind the content cache. Run in a thread: it imports the configured
    providers' SDKs (and redis for a Redis cache), which reads many files."""
    cache = build_cache(config.cache, config.store)
    paced = config.cache.replay == "paced"
    return build_registry(config.providers, cache, paced_replay=paced)


async def stop_gracefully(app: web.Application) -> None:
    """Say goaway, let sessions drain, end the rest (reason shutdown), close sockets 1001.

    Runs before aiohttp's own shutdown, which stops reading every connection at once: here
    clients can still cancel, ping and receive during the drain. A second call is a no-op.
    """
    if app[MANAGER].shutting_down:
        return
    connections: list[Connection] = [*app[CONNECTIONS]]
    timeout_s = app[CONFIG].server.shutdown_timeout_s
    drain_s = app[CONFIG].server.drain_s
    goaway = {"reason": "shutdown", "drain_ms": round(drain_s * 1000)}
    for connection in connections:
        connection.send_event(EventType.GOAWAY, goaway)
    await app[MANAGER].shutdown(drain_s=drain_s)
    # All at once and bounded: one by one, non-reading clients would hold the stop for long.
    await asyncio.gather(*(c.close(ServerShutdown(), timeout_s=timeout_s / 2) for c in connections))


ASSET_PATHS = ("/static/", "/client/")


class AccessLogger(AbstractAccessLogger):
    """One line per request, without the query string: it may carry a resume token.

    Page assets (/static/, /client/) are logged at DEBUG: one page load fetches about ten.
    """

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        level = logging.DEBUG if request.path.startswith(ASSET_PATHS) else logging.INFO
        self.logger.log(
            level,
            "%s %s %s %d %.3fs",
            request.remote,
            request.method,
            request.path,
            response.status,
            time,
        )


@dataclass
class RunningServer:
    """A started server: its URL, and how to stop it."""

    runner: web.AppRunner
    url: str
    closed: bool = False

    @property
    def app(self) -> web.Application:
        return self.runner.app

    async def aclose(self) -> None:
        """Graceful stop (see ARCHITECTURE.md, shutdown flow); a second call does nothing."""
        if not self.closed:
            self.closed = True
            for site in list(self.runner.sites):
                await site.stop()  # no new connections during the drain
            await stop_gracefully(self.app)
            await self.runner.cleanup()


async def start_server(config: Config, app: web.Application | None = None) -> RunningServer:
    """Start serving ``config`` and return once the socket listens (port 0 picks one).

    ``app``: one made by ``make_app(config)`` that the caller added routes to."""
    app = make_app(config) if app is None else app
    runner = web.AppRunner(
        app,
        handler_cancellation=True,  # a client that disconnects cancels its handler (SSE)
        access_log_class=AccessLogger,
        shutdown_timeout=config.server.shutdown_timeout_s,
    )
    try:
        await runner.setup()  # builds the providers: a ConfigError may come from there
        site = web.TCPSite(runner, config.server.host, config.server.port)
        await site.start()
    except BaseException as exc:
        await runner.cleanup()
        if isinstance(exc, OSError):
            address = f"{config.server.host}:{config.server.port}"
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise ConfigError(f"cannot listen on {address}: {reason}") from None
        raise
    host, port = runner.addresses[0][:2]
    if ":" in host:
        host = f"[{host}]"
    return RunningServer(runner, f"http://{host}:{port}")
