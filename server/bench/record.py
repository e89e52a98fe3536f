"""What a load run measures, and how it is summarised. No I/O."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["BenchResult", "BenchSpec", "Recorder", "percentile"]

Mode = Literal["ws", "sse"]


@dataclass(frozen=True, slots=True)
class BenchSpec:
    """One load run. ``sessions`` is per connection for WS, the stream count for SSE."""

    url: str
    mode: Mode = "ws"
    connections: int = 10
    sessions: int = 100
    chunks: int = 200  # content chunks per stream (the simulator's echo + filler)
    rate: float = 0.0  # tokens per second per stream; 0 = as fast as the server goes
    ramp_s: float = 0.0  # spread session starts evenly over this many seconds
    cancel_after: int = 0  # cancel every session after this many chunks (0: never)
    burst: int | None = None  # the simulator's tokens per loop turn when unpaced
    timeout_s: float = 300.0  # the whole run stops after this, whatever happened
    until: Literal["end", "started"] = "end"  # "started": stop once every stream has a chunk

    @property
    def streams(self) -> int:
        return self.connections * self.sessions if self.mode == "ws" else self.sessions

    def start_data(self) -> dict[str, Any]:
        """The ``start`` payload: a one-token prompt, then chunks-1 filler tokens."""
        params: dict[str, Any] = {
            "max_tokens": max(self.chunks - 1, 0),
            "tokens_per_second": self.rate,
            "ttft_ms": 0,
        }
        if self.burst is not None:
            params["burst"] = self.burst
        return {"prompt": "go", "params": params}


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass(slots=True)
class Recorder:
    """Counters shared by every client task of one run (single-threaded)."""

    expected: int
    began: float = field(default_factory=time.perf_counter)
    events: int = 0
    chunks: int = 0
    done: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    ttfc: list[float] = field(default_factory=list)
    stream_time: list[float] = field(default_factory=list)
    cancel_latency: list[float] = field(default_factory=list)
    first_chunks: int = 0  # streams that have had their first chunk
    server_limits: dict[str, Any] = field(default_factory=dict)  # from `ready` (WS runs)

    def error(self, code: str) -> None:
        self.errors[code] += 1


@dataclass(slots=True)
class BenchResult:
    """The summary printed by ``tokenmux bench`` (and its --json)."""

    mode: str
    streams: int
    completed: int
    reasons: dict[str, int]
    errors: dict[str, int]
    events: int
    chunks: int
    elapsed_s: float
    events_per_s: float
    ttfc_p50_ms: float | None
    ttfc_p99_ms: float | None
    stream_p50_ms: float | None
    stream_p99_ms: float | None
    cancel_p50_ms: float | None
    cancel_p99_ms: float | None
    server_cpu_s: float | None = None
    server_rss_bytes: float | None = None
    server_cpu_per_1m_chunks_s: float | None = None
    hints: list[str] = field(default_factory=list)  # why streams were refused, what to change

    @classmethod
    def from_recorder(cls, spec: BenchSpec, rec: Recorder, elapsed_s: float) -> BenchResult:
        def ms(values: list[float], q: float) -> float | None:
            value = percentile(values, q)
            return None if value is None else round(value * 1000, 3)

        return cls(
            mode=spec.mode,
            streams=spec.streams,
            completed=rec.done,
            reasons=dict(rec.reasons),
            errors=dict(rec.errors),
            events=rec.events,
            chunks=rec.chunks,
            elapsed_s=round(elapsed_s, 3),
            events_per_s=round(rec.events / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            ttfc_p50_ms=ms(rec.ttfc, 50),
            ttfc_p99_ms=ms(rec.ttfc, 99),
            stream_p50_ms=ms(rec.stream_time, 50),
            stream_p99_ms=ms(rec.stream_time, 99),
            cancel_p50_ms=ms(rec.cancel_latency, 50),
            cancel_p99_ms=ms(rec.cancel_latency, 99),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
