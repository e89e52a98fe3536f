"""The in-process content cache: least recently used out first, by entry count and bytes."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from server.cache.base import CacheStats, Entry, encode_entry

__all__ = ["MemoryCache"]


class MemoryCache:
    """An LRU of entries with a time to live. Entries are kept as event objects (a hit
    costs no decoding); their size is that of their encoded form."""

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stats = CacheStats()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, int, Entry]] = OrderedDict()

    async def get(self, key: str) -> Entry | None:
        found = self._entries.get(key)
        if found is not None and found[0] <= self._clock():
            self._drop(key)
            found = None
        if found is None:
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return found[2]

    def put(self, key: str, entry: Entry) -> None:
        size = len(encode_entry(entry))
        if size > self._max_bytes:
            return  # larger than the whole cache: it would evict everything, then itself
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + self._ttl_s, size, tuple(entry))
        stats = self.stats
        stats.stores += 1
        stats.entries += 1
        stats.bytes += size
        while stats.entries > self._max_entries or stats.bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))
            stats.evictions += 1

    def _drop(self, key: str) -> None:
        _, size, _ = self._entries.pop(key)
        self.stats.entries -= 1
        self.stats.bytes -= size

    async def aclose(self) -> None:
        self._entries.clear()
