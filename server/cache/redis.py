"""The content cache on Redis, shared by every node that points at the same server.

Under ``store.key_prefix``: ``cache:<key>`` holds an encoded entry (expiring after
``ttl_s``); ``cache-lru`` (a sorted set: key by last use, in ms) and ``cache-sizes`` (a
hash: key to bytes) with the total in ``cache-bytes`` make it least-recently-used by entry
count and bytes across nodes. One Lua script stores an entry and evicts, atomically; a
hit is one pipelined round trip (GET, and a touch in ``cache-lru``).

An entry that expired by its TTL stays counted in ``cache-lru`` and ``cache-bytes``
until eviction reaches it (it is the least recently used, so first in line). The script
names only its bookkeeping keys: meant for one Redis server, not Redis Cluster.

At most ``IN_FLIGHT`` round trips run at once (redis-py's pool holds 100 connections and
refuses more): a burst of sessions waits for a slot, within ``op_timeout_s``.

Redis being unreachable never fails a session: a failed read is a miss, a failed write
is dropped, both counted in ``stats.errors`` and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis.exceptions import RedisError

from server.cache.base import CacheStats, Entry, decode_entry, encode_entry

__all__ = ["RedisCache"]

logger = logging.getLogger(__name__)

FAILURES = (RedisError, OSError, TimeoutError)
IN_FLIGHT = 32

# KEYS: entry, lru, sizes, total. ARGV: blob, ttl_ms, now_ms, max_entries, max_bytes.
# Returns {entries, bytes, evicted}.
_PUT = """
local old = redis.call('HGET', KEYS[3], KEYS[1])
if old then redis.call('DECRBY', KEYS[4], old) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], #ARGV[1])
local total = redis.call('INCRBY', KEYS[4], #ARGV[1])
local evicted = 0
while redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[4]) or total > tonumber(ARGV[5]) do
  local victim = redis.call('ZPOPMIN', KEYS[2])[1]
  local size = redis.call('HGET', KEYS[3], victim)
  redis.call('HDEL', KEYS[3], victim)
  redis.call('DEL', victim)
  if size then total = redis.call('DECRBY', KEYS[4], size) end
  evicted = evicted + 1
end
return {redis.call('ZCARD', KEYS[2]), total, evicted}
"""


class RedisCache:
    """Entries in Redis; writes run in tasks this object owns (awaited by ``aclose``)."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str,
        max_entries: int,
        max_bytes: int,
        ttl_s: float,
        op_timeout_s: float,
    ) -> None:
        self.stats = CacheStats()
        self._client = client
        self._prefix = prefix + "cache:"
        self._books = (prefix + "cache-lru", prefix + "cache-sizes", prefix + "cache-bytes")
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._ttl_ms = round(ttl_s * 1000)
        self._timeout_s = op_timeout_s
        self._put_script = client.register_script(_PUT)
        self._writes: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(IN_FLIGHT)

    async def get(self, key: str) -> Entry | None:
        name = self._prefix + key
        try:
            async with asyncio.timeout(self._timeout_s), self._slots:
                async with self._client.pipeline(transaction=False) as pipe:
                    pipe.get(name)
                    pipe.zadd(self._books[0], {name: _now_ms()}, xx=True)
                    blob, _ = await pipe.execute()
        except FAILURES as exc:  # Redis down or slow: serve from the provider instead
            self._failed("read", exc)
            blob = None
        if blob is None:
            self.stats.misses += 1
            return None
        try:
            entry = decode_entry(blob)
        except ValueError as exc:  # written by another version: a miss, and overwritten
            logger.warning("cache: unreadable entry %s: %s", key[:12], exc)
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return entry

    def put(self, key: str, entry: Entry) -> None:
        blob = encode_entry(entry)
        if len(blob) > self._max_bytes:
            return
        task = asyncio.create_task(self._put(self._prefix + key, blob), name="cache write")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _put(self, name: str, blob: bytes) -> None:
        try:
            async with asyncio.timeout(self._timeout_s), self._slots:
                entries, total, evicted = await self._put_script(
                    keys=[name, *self._books],
                    args=[blob, self._ttl_ms, _now_ms(), self._max_entries, self._max_bytes],
                )
        except FAILURES as exc:
            self._failed("write", exc)
            return
        stats = self.stats
        stats.stores += 1
        stats.evictions += int(evicted)
        stats.entries, stats.bytes = int(entries), int(total)

    def _failed(self, what: str, exc: Exception) -> None:
        self.stats.errors += 1
        logger.warning("cache: Redis %s failed: %r", what, exc)

    async def aclose(self) -> None:
        """Let pending writes finish (each is bounded by op_timeout_s), then disconnect."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self._client.aclose()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
