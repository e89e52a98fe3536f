"""Typed keys for what the application holds (aiohttp AppKey), in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from server.config import Config
from server.sessions.manager import SessionManager

if TYPE_CHECKING:
    from server.transports.middleware import ClientLimits
    from server.transports.websocket import WsConnection

__all__ = ["CLIENTS", "CONFIG", "CONNECTIONS", "MANAGER", "Connections"]

CONFIG = web.AppKey("config", Config)
MANAGER = web.AppKey("manager", SessionManager)


class Connections(set["WsConnection"]):
    """The open WebSocket connections (for shutdown and /healthz)."""


CONNECTIONS = web.AppKey("connections", Connections)
CLIENTS: web.AppKey[ClientLimits] = web.AppKey("clients")
