"""A Django project (one file) that streams answers from tokenmux as its own SSE.

``GET /chat?prompt=...`` is an async view returning a ``StreamingHttpResponse`` over an
async generator that relays one tokenmux session as ``event: text`` / ``error`` / ``end``
blocks. The process keeps one tokenmux ``Client`` (one WebSocket) for all its requests.
Under ASGI, Django cancels the view's task when the browser disconnects; the generator's
``finally`` then cancels the session on the tokenmux server, which aborts the provider
request. (Under WSGI there is no async view and no disconnect notice: serve with ASGI.)

    TOKENMUX_URL=http://127.0.0.1:8080 uvicorn examples.django_app.app:application \
        --lifespan off --port 8000
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings

settings.configure(  # an existing project has these in settings.py
    DEBUG=False,
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "example-only"),
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
)

from django.core.asgi import get_asgi_application  # noqa: E402  (needs the settings)
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from tokenmux import Client, ContentChunk, ErrorEvent, Session, StreamEnd, TokenmuxError  # noqa: E402

_client: Client | None = None


def tokenmux_client() -> Client:
    """The process's one client, made on first use (inside the server's event loop)."""
    global _client
    if _client is None:
        _client = Client(os.environ.get("TOKENMUX_URL", "http://127.0.0.1:8080"),
                         token=os.environ.get("TOKENMUX_TOKEN"))  # fmt: skip
    return _client


async def chat(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    try:
        session = await tokenmux_client().start(prompt=request.GET.get("prompt", ""))
    except TokenmuxError as exc:  # refused before it began: rate limited, bad request, ...
        return JsonResponse({"code": exc.code, "message": exc.message}, status=502)
    response = StreamingHttpResponse(relay(session), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def relay(session: Session) -> AsyncIterator[str]:
    """The session's text, its error if it fails, and how it ended, as SSE blocks."""
    try:
        async for event in session:
            if isinstance(event, ContentChunk):
                yield sse("text", {"text": event.content})
            elif isinstance(event, ErrorEvent):
                yield sse("error", {"code": event.code, "message": event.message})
            elif isinstance(event, StreamEnd):
                yield sse("end", {"reason": event.reason})
    finally:
        if not session.ended:  # the browser went away: stop the generation upstream
            await session.cancel()


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


urlpatterns = [path("chat", chat)]
application = get_asgi_application()
