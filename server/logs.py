"""Logging with the request id and the session id on every line.

Each streaming handler gives its request (and so each WebSocket connection) an id, from the
``X-Request-Id`` header when a proxy set one, and keeps it in a context variable: tasks
created while handling the request (session tasks, the writer task) inherit it. The session
id comes from the name of the session's task (``session <id>``, set by the manager), so no
session code has to carry it around. Lines look like::

    2026-01-01 12:00:00,000 INFO server.sessions.session [req=3f2a9c1b session=s1] session_end ...

``--log-events`` (or log level DEBUG) adds one ``>`` line per event written to a client.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import secrets
from typing import Any

from aiohttp import web

__all__ = [
    "EVENTS",
    "REQUEST_ID",
    "ContextFilter",
    "bind_request_id",
    "configure_logging",
    "log_events",
]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s session=%(session_id)s] %(message)s"
)

EVENTS = logging.getLogger("tokenmux.events")
"""Per-event debug lines; writers check ``EVENTS.isEnabledFor(DEBUG)`` once per batch."""

_SAFE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``session_id`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        # A line logged outside the session's task (a session ended before its first step
        # is closed by a done-callback) names its session with extra={"session_id": ...}.
        if getattr(record, "session_id", None) is None:
            record.session_id = _current_session()
        return True


def _current_session() -> str:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop: start-up, shutdown, threads
        return "-"
    if task is not None:
        name = task.get_name()
        if name.startswith("session "):
            return name[8:]
    return "-"


def bind_request_id(request: web.Request) -> str:
    """Give the request an id for its log lines: a proxy's X-Request-Id when it is sane.

    Call it first in a handler. aiohttp runs every request in a task of its own (so that
    context variables do not leak between requests), and tasks created by the handler
    (sessions, the writer) copy its context: they log the same id. A plain call rather
    than a middleware: a middleware keeps two more coroutine frames alive for the whole
    life of every stream (~0.7 KiB each, which the SSE memory budget cannot spare).
    """
    offered = request.headers.get("X-Request-Id", "")
    request_id = offered if _SAFE_ID.fullmatch(offered) else secrets.token_hex(4)
    REQUEST_ID.set(request_id)
    return request_id


def log_events(transport: str, batch: list[dict[str, Any]]) -> None:
    """One ``>`` line per event written (debug mode)."""
    for event in batch:
        EVENTS.debug(
            "> %s %s session=%s seq=%s",
            transport,
            event["type"],
            event.get("session", "-"),
            event.get("seq", "-"),
        )


def configure_logging(level: str, *, events: bool = False) -> None:
    """Root logging to stderr in the format above; ``events`` adds per-event lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    EVENTS.setLevel(logging.DEBUG if events else logging.NOTSET)
