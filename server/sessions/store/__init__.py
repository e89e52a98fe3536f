"""Session stores: where resume state lives beyond one process.

``memory`` (the default) keeps everything in this process: the SessionManager's own
registry and replay buffers are the whole story. ``redis`` adds a shared registry, a
per-session replay log (a Redis Stream) and cancel routing between nodes, so a client can
resume or cancel on whichever node a load balancer sends it to (docs/scale-out.md).
"""

from __future__ import annotations

from server.config import StoreConfig
from server.errors import ConfigError
from server.sessions.store.base import (
    ENDED,
    ChatAnswer,
    Control,
    EventLog,
    RemoteSession,
    SessionStore,
)
from server.sessions.store.memory import MemoryStore

__all__ = [
    "ENDED",
    "ChatAnswer",
    "Control",
    "EventLog",
    "MemoryStore",
    "RemoteSession",
    "SessionStore",
    "build_store",
]


def build_store(config: StoreConfig, *, grace_s: float, buffer_events: int) -> SessionStore:
    """The store ``config`` names. Nothing connects until ``start()``."""
    if config.type == "memory":
        return MemoryStore()
    try:
        from server.sessions.store.redis import RedisStore
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigError(
            "store.type: redis needs the redis package (pip install 'tokenmux[redis]')"
        ) from None
    return RedisStore(config, grace_s=grace_s, buffer_events=buffer_events)
