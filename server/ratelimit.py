"""Token buckets, per connection and per client address, and the per-client limits built on
them. Pure: the clock is a parameter."""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from server.errors import RateLimited

__all__ = ["ClientBuckets", "ClientLimits", "TokenBucket"]


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._stamp = clock()

    def take(self) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        if self._rate <= 0:
            return float("inf")
        return (1.0 - self._tokens) / self._rate


class ClientBuckets:
    """One bucket per client address, the least recently used forgotten past ``capacity``."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        capacity: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._capacity = capacity
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, client: str) -> float:
        bucket = self._buckets.pop(client, None)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst, clock=self._clock)
        self._buckets[client] = bucket
        if len(self._buckets) > self._capacity:
            self._buckets.popitem(last=False)
        return bucket.take()


class ClientLimits:
    """Per-client-address state: open WebSockets and the session-start bucket."""

    def __init__(
        self,
        *,
        starts_per_s: float,
        start_burst: int,
        max_connections: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.starts = ClientBuckets(starts_per_s, start_burst, clock=clock)
        self.max_connections = max_connections
        self._open: Counter[str] = Counter()

    def open_connection(self, client: str) -> None:
        if self._open[client] >= self.max_connections:
            raise RateLimited(
                f"at most {self.max_connections} connections per client", retry_after_s=1.0
            )
        self._open[client] += 1

    def close_connection(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]

    def check_start(self, client: str) -> None:
        wait_s = self.starts.take(client)
        if wait_s:
            raise RateLimited("too many session starts from this client", retry_after_s=wait_s)
