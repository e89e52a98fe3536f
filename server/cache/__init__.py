"""The opt-in content cache (config ``cache``): exact repeated requests answered from a
store instead of the provider. ``base`` has keys and entries, ``memory`` and ``redis`` the
stores, ``provider`` the CachedProvider that sessions stream through."""

from __future__ import annotations

from server.cache.base import CacheStats, ContentCache
from server.config import CacheConfig, StoreConfig

__all__ = ["CacheStats", "ContentCache", "build_cache"]


def build_cache(config: CacheConfig, store: StoreConfig) -> ContentCache | None:
    """The configured store, or None for ``type: none`` (the default)."""
    if config.type == "memory":
        from server.cache.memory import MemoryCache

        return MemoryCache(
            max_entries=config.max_entries, max_bytes=config.max_bytes, ttl_s=config.ttl_s
        )
    if config.type == "redis":
        from server.cache.redis import RedisCache
        from server.sessions.store.redis import connect

        return RedisCache(
            connect(config.url or store.url),
            prefix=store.key_prefix,
            max_entries=config.max_entries,
            max_bytes=config.max_bytes,
            ttl_s=config.ttl_s,
            op_timeout_s=store.op_timeout_s,
        )
    return None
