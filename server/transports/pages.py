"""The browser pages: ``/`` (multi-session dashboard), ``/chat`` (SSE chat), their assets under
``/static/``, and the JavaScript client library itself under ``/client/``.

The library is served from ``client_js/src`` next to the package (a source checkout), or from
the directory named by ``$TOKENMUX_CLIENT_DIR``. When neither exists, the pages still load but
``/client/`` answers 404 with a message that says what to set; start-up logs the same.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

__all__ = ["CLIENT_DIR_ENV", "STATIC_DIR", "add_page_routes", "find_client_dir"]

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
CLIENT_DIR_ENV = "TOKENMUX_CLIENT_DIR"
_CHECKOUT_CLIENT_DIR = Path(__file__).resolve().parents[2] / "client_js" / "src"
_NO_CACHE = {"Cache-Control": "no-cache"}


def find_client_dir(environ: dict[str, str] | None = None) -> Path | None:
    """The directory of the client library's modules, or None when it cannot be found."""
    env = os.environ if environ is None else environ
    configured = env.get(CLIENT_DIR_ENV)
    candidate = Path(configured) if configured else _CHECKOUT_CLIENT_DIR
    return candidate if (candidate / "index.js").is_file() else None


def add_page_routes(app: web.Application) -> None:
    """Register ``/``, ``/chat``, ``/static/`` and ``/client/`` on ``app``."""
    app.router.add_get("/", _page("index.html"))
    app.router.add_get("/chat", _page("chat.html"))
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    client_dir = find_client_dir()
    if client_dir is not None:
        app.router.add_static("/client/", client_dir)
    else:
        logger.warning(
            "client_js/src not found: /client/ is unavailable; set %s to its path", CLIENT_DIR_ENV
        )
        app.router.add_get("/client/{path:.*}", _missing_client)


def _page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    path = STATIC_DIR / name

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers=_NO_CACHE)

    return handle


async def _missing_client(request: web.Request) -> web.Response:
    return web.Response(
        status=404,
        text=f"the client library is not installed here: set {CLIENT_DIR_ENV} to client_js/src\n",
    )
