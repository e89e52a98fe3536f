"""Typed keys for what the application holds (aiohttp AppKey), in one place.

Below the transports: it names their shared objects without importing their routes.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from server.config import Config
from server.errors import ConnectionEnded
from server.metrics import Tallies
from server.protocol.envelope import EventType
from server.ratelimit import ClientLimits
from server.sessions.manager import SessionManager
from server.sessions.outbox import Outbox
from server.transports.metrics_registry import AppMetrics
from server.transports.sse_streams import SseStreams

__all__ = [
    "CLIENTS",
    "CONFIG",
    "CONNECTIONS",
    "CORS_ORIGIN",
    "MANAGER",
    "METRICS",
    "SSE_STREAMS",
    "TALLIES",
    "Connection",
    "Connections",
]


class Connection(Protocol):
    """What the application asks of an open WebSocket (transports/websocket.py's
    WsConnection): a goaway before shutdown, then a bounded close; its queue for /metrics."""

    outbox: Outbox

    def send_event(self, type_: EventType, data: dict[str, Any]) -> None: ...

    async def close(self, reason: ConnectionEnded, *, timeout_s: float) -> None: ...


class Connections(set[Connection]):
    """The open WebSocket connections (for shutdown and /healthz)."""


CONFIG = web.AppKey("config", Config)
MANAGER = web.AppKey("manager", SessionManager)
CONNECTIONS = web.AppKey("connections", Connections)
CLIENTS = web.AppKey("clients", ClientLimits)  # per client address: sockets, start rate
TALLIES = web.AppKey("tallies", Tallies)  # events and bytes sent, bumped on the hot path
METRICS = web.AppKey("metrics", AppMetrics)  # the Prometheus registry (GET /metrics)
SSE_STREAMS = web.AppKey("sse_streams", SseStreams)  # open SSE streams, their keep-alive
# The Origin an /api/ request may be answered to with CORS headers (set by the middleware).
CORS_ORIGIN = web.RequestKey("cors_origin", str)
