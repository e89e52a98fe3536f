"""The browser pages: ``/`` (multi-session dashboard), ``/chat`` (SSE chat), their assets under
``/static/``, and the JavaScript client library itself under ``/client/``.

The library is served from ``client_js/src`` next to the package (a source checkout), or from
the directory named by ``$TOKENMUX_CLIENT_DIR``. When it is missing, the pages still load but
``/client/`` answers 404 with a message that says what to set, and start-up logs the same.

No filesystem call happens on the event loop: paths are checked as pure paths, and files are
read by ``web.FileResponse``, which stats and reads in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path, PurePosixPath

from aiohttp import web

__all__ = ["CLIENT_DIR_ENV", "STATIC_DIR", "add_page_routes", "client_dir", "find_client_dir"]

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
CLIENT_DIR_ENV = "TOKENMUX_CLIENT_DIR"
_CHECKOUT_CLIENT_DIR = Path(__file__).resolve().parents[2] / "client_js" / "src"
_NO_CACHE = {"Cache-Control": "no-cache"}
_MISSING_CLIENT = f"the client library is not installed here: set {CLIENT_DIR_ENV} to client_js/src"


def client_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the client library should be: ``$TOKENMUX_CLIENT_DIR`` or the checkout's copy."""
    env = os.environ if environ is None else environ
    configured = env.get(CLIENT_DIR_ENV)
    return Path(configured) if configured else _CHECKOUT_CLIENT_DIR


def find_client_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """``client_dir()`` if it holds the library (it has ``index.js``), else None. Blocking."""
    candidate = client_dir(environ)
    return candidate if (candidate / "index.js").is_file() else None


def add_page_routes(app: web.Application) -> None:
    """Register ``/``, ``/chat``, ``/static/`` and ``/client/`` on ``app``."""
    library = client_dir()
    app.router.add_get("/", _file(STATIC_DIR / "index.html"))
    app.router.add_get("/chat", _file(STATIC_DIR / "chat.html"))
    app.router.add_get("/static/{path:.+}", _directory(STATIC_DIR))
    app.router.add_get("/client/{path:.+}", _directory(library, missing=_MISSING_CLIENT))
    app.on_startup.append(_check_client_dir)


async def _check_client_dir(app: web.Application) -> None:
    if await asyncio.get_running_loop().run_in_executor(None, find_client_dir) is None:
        logger.warning("%s (looked in %s)", _MISSING_CLIENT, client_dir())


def _file(path: Path) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers=_NO_CACHE)

    return handle


def _directory(root: Path, *, missing: str | None = None) -> Handler:
    """Serve files below ``root``; dot-files and ``..`` are never served."""

    async def handle(request: web.Request) -> web.StreamResponse:
        relative = PurePosixPath(request.match_info["path"])
        if relative.is_absolute() or any(p.startswith(".") for p in relative.parts):
            raise web.HTTPNotFound()
        if missing is not None and not await _exists(root / "index.js"):
            raise web.HTTPNotFound(text=missing + "\n")
        return web.FileResponse(root.joinpath(*relative.parts), headers=_NO_CACHE)

    return handle


async def _exists(path: Path) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, path.is_file)
