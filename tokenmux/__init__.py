"""tokenmux client: stream LLM output from a tokenmux server.

    from tokenmux import Client

    async with Client("http://127.0.0.1:8080") as client:
        session = await client.start(prompt="Hello")
        async for event in session:
            ...

``tokenmux.sync.Client`` is the same for scripts without asyncio; ``tokenmux chat`` is a
terminal chat built on it. This package never imports the server.
"""

from tokenmux.client import Client, Session
from tokenmux.errors import (
    AuthError,
    BadResponse,
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    ProviderAuth,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    RateLimited,
    RequestError,
    ServerError,
    SessionNotFound,
    TokenmuxError,
)
from tokenmux.events import (
    ContentChunk,
    ContentComplete,
    ErrorEvent,
    Event,
    GoAway,
    Metadata,
    Ready,
    Reasoning,
    ReasoningChunk,
    Source,
    StreamEnd,
    StreamStart,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UnknownEvent,
    Usage,
)

__all__ = [
    "AuthError",
    "BadResponse",
    "Client",
    "ClientClosed",
    "ConnectionFailed",
    "ConnectionLost",
    "ContentChunk",
    "ContentComplete",
    "ErrorEvent",
    "Event",
    "GoAway",
    "Metadata",
    "ProviderAuth",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderTimeout",
    "RateLimited",
    "Ready",
    "Reasoning",
    "ReasoningChunk",
    "RequestError",
    "ServerError",
    "Session",
    "SessionNotFound",
    "Source",
    "StreamEnd",
    "StreamStart",
    "TokenmuxError",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "UnknownEvent",
    "Usage",
]
