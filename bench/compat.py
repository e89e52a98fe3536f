"""What the drop-in formats cost per event, next to the native SSE route.

    PYTHONASYNCIODEBUG= .venv/bin/python bench/compat.py [--streams 50] [--chunks 2000]
        [--repeats 3]

Two figures per format:

- encoder: ns per ``content_chunk`` envelope to turn batches of 16 into SSE bytes (the
  native ``data: <envelope JSON>`` framing, ``chat.completion.chunk``, UI message parts),
  the best of ``--repeats`` interleaved runs;
- route: server CPU seconds per million ``content_chunk`` events, ``--streams`` concurrent
  streams of ``--chunks`` tokens each from the simulator, on ``POST /api/stream``,
  ``POST /v1/chat/completions`` (stream) and ``POST /api/chat``. The server is pinned to
  one core and this process to the other, as in bench/run.py; CPU is read from /proc;
  the median of ``--repeats`` interleaved runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import CLIENT_CORE, STACKS, cpu_seconds, running  # noqa: E402
from server.metrics import TransportTally  # noqa: E402
from server.protocol.envelope import Envelope  # noqa: E402
from server.protocol.openai_encoder import ChatCompletionChunks  # noqa: E402
from server.protocol.sse_data import SseDataEncoder  # noqa: E402
from server.protocol.stream import SessionStream  # noqa: E402
from server.protocol.ui_encoder import UiMessageStream  # noqa: E402

BATCH = 16
WORDS = ("the", " stream", " of", " tokens", " flows", " through", " one", " socket")


def _envelopes(count: int) -> list[Envelope]:
    stream = SessionStream("bench-session")
    events = [stream.start(provider="sim", model="sim-1", resume_token=None)]
    events += [stream.chunk(WORDS[i % len(WORDS)]) for i in range(count)]
    return events


# Each encoder counts into a tally, as on the server (for /metrics).


def _native() -> Callable[[list[Envelope]], bytes]:
    return SseDataEncoder(TransportTally()).encode


def _openai() -> Callable[[list[Envelope]], bytes]:
    chunks = ChatCompletionChunks(
        "chatcmpl-bench", created=0, include_usage=True, tally=TransportTally()
    )
    return chunks.encode


def _ui() -> Callable[[list[Envelope]], bytes]:
    return UiMessageStream("msg-bench", TransportTally()).encode


ENCODERS = {"native": _native, "openai": _openai, "ui": _ui}


def encoder_ns(make: Callable[[], Callable[[list[Envelope]], bytes]], count: int) -> float:
    events = _envelopes(count)
    encode = make()
    encode(events[:1])  # stream_start: the per-stream set-up, not timed
    chunks = events[1:]
    batches = [chunks[i : i + BATCH] for i in range(0, len(chunks), BATCH)]
    began = time.perf_counter_ns()
    for batch in batches:
        encode(batch)
    return (time.perf_counter_ns() - began) / len(chunks)


def _request(route: str, n: int, chunks: int) -> tuple[str, dict[str, Any]]:
    prompt = f"bench {n}"
    params = {"max_tokens": chunks}
    if route == "native":
        return "/api/stream", {"prompt": prompt, "llm_params": params}
    if route == "openai":
        body = {"model": "sim", "messages": [{"role": "user", "content": prompt}]}
        return "/v1/chat/completions", body | {"stream": True, "max_tokens": chunks}
    message = {"id": f"u{n}", "role": "user", "parts": [{"type": "text", "text": prompt}]}
    return "/api/chat", {"id": f"chat{n}-{time.monotonic_ns()}", "messages": [message]} | {
        "params": params
    }


async def _drive(url: str, route: str, streams: int, chunks: int) -> None:
    async def one(http: aiohttp.ClientSession, n: int) -> None:
        path, body = _request(route, n, chunks)
        async with http.post(url + path, json=body) as response:
            assert response.status == 200, await response.text()
            async for _ in response.content.iter_any():
                pass

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(one(http, n) for n in range(streams)))


def route_cpu(url: str, pid: int, route: str, streams: int, chunks: int) -> float:
    """Server CPU seconds per million content chunks for one run on ``route``."""
    before = cpu_seconds(pid)
    asyncio.run(_drive(url, route, streams, chunks))
    used = cpu_seconds(pid) - before
    # Every stream also echoes its two-word prompt as two chunks before the filler.
    return used / (streams * (chunks + 2)) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--encoder-events", type=int, default=200_000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {CLIENT_CORE})
    # Best of the repeats, interleaved: on a shared machine the least disturbed run is the
    # encoder's own cost.
    print(f"encoder, ns per content_chunk (batches of {BATCH}, best of {args.repeats}):")
    timings: dict[str, list[float]] = {name: [] for name in ENCODERS}
    for _ in range(args.repeats):
        for name, make in ENCODERS.items():
            timings[name].append(encoder_ns(make, args.encoder_events))
    native_ns = min(timings["native"])
    for name, values in timings.items():
        ns = min(values)
        print(f"  {name:7} {ns:7.0f} ns  {ns / native_ns:.2f}x native")
    print(
        f"route, server CPU s per 1M content chunks ({args.streams} streams x {args.chunks}, "
        f"median of {args.repeats}):"
    )
    with running(STACKS["tokenmux"]) as (url, pid):
        asyncio.run(_drive(url, "native", 2, 10))  # warm up: imports, first allocations
        runs: dict[str, list[float]] = {route: [] for route in ENCODERS}
        for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits all
            for route in runs:
                runs[route].append(route_cpu(url, pid, route, args.streams, args.chunks))
    native_cpu = statistics.median(runs["native"])
    for route, values in runs.items():
        cpu = statistics.median(values)
        print(f"  {route:7} {cpu:6.2f} s  {cpu / native_cpu:.2f}x native")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
