"""The content cache's parts shared by its stores: keys, entries, their bytes, counters.

An entry is a finished provider stream: its events (text, usage, finish, and whatever
else the provider sent), each with the seconds since the request at which it arrived, so
that a hit can be replayed at full speed or at the original pacing. Only streams that
ended with the provider's Finish are stored; a cancelled or failed stream never is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, get_args

import orjson

from server.providers.base import ProviderEvent, ProviderRequest

__all__ = [
    "CacheStats",
    "ContentCache",
    "Entry",
    "cache_key",
    "decode_entry",
    "encode_entry",
]

Entry: TypeAlias = Sequence[tuple[float, ProviderEvent]]
"""(seconds since the request, event), in arrival order."""

# Every event type of the provider seam, by class name: what an encoded entry may hold.
_EVENT_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in get_args(ProviderEvent)}


@dataclass(slots=True)
class CacheStats:
    """What /metrics reports. ``entries`` and ``bytes`` are the store's current size (for
    Redis: as of this node's last write, since other nodes write too)."""

    hits: int = 0
    misses: int = 0
    stores: int = 0
    evictions: int = 0
    entries: int = 0
    bytes: int = 0
    errors: int = 0  # Redis round trips that failed (a failed get counts as a miss)


class ContentCache(Protocol):
    """A store of entries by key: ``memory`` (this process) or ``redis`` (shared)."""

    stats: CacheStats

    async def get(self, key: str) -> Entry | None:
        """The entry, touched as most recently used; None (a miss) when absent or expired."""
        ...

    def put(self, key: str, entry: Entry) -> None:
        """Store ``entry`` (not waited for: a Redis write happens in a task the store owns)."""
        ...

    async def aclose(self) -> None: ...


def cache_key(provider: str, model: str, request: ProviderRequest) -> str:
    """sha256 of the provider, the model and every field of the request (messages, system,
    tools, tool choice, reasoning and every parameter), in a canonical JSON form."""
    blob = orjson.dumps([provider, model, request], option=orjson.OPT_SORT_KEYS, default=_plain)
    return hashlib.sha256(blob).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"cannot key a {type(value).__name__}")


def encode_entry(entry: Entry) -> bytes:
    """``[[at_s, "TextDelta", {"text": ...}], ...]`` as JSON."""
    return orjson.dumps([[at, type(event).__name__, event] for at, event in entry], default=_plain)


def decode_entry(blob: bytes) -> Entry:
    """The events of ``encode_entry``; ValueError when the blob is not one."""
    try:
        return [
            (float(at), _EVENT_TYPES[name](**fields)) for at, name, fields in orjson.loads(blob)
        ]
    except (KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"not a cache entry: {exc}") from None
