"""What a PROTOCOL.md section 9 event costs the server, next to a text chunk.

    .venv/bin/python bench/rich.py [--rounds 5] [--connections 4] [--sessions 50] [--tokens 200]

One tokenmux process (pinned to core 0, as bench/run.py runs it) streams the simulator's
answers to WebSocket clients (core 1), ``--sessions`` at once on each connection: ``text``
sessions stream ``--tokens`` content chunks; ``reasoning`` sessions stream ``--tokens``
reasoning chunks before a short reply; ``tools`` sessions add a tool call (start, three
deltas, end) after the reasoning. Server CPU is read from /proc around each run; the
figure is server CPU microseconds per event received by the client, the median over
rounds that interleave the kinds (each round starting with the next kind).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import CLIENT_CORE, STACKS, cpu_seconds, running  # noqa: E402

TOOL = {"name": "lookup", "parameters": {"type": "object", "properties": {}}}


def kinds(tokens: int) -> dict[str, dict[str, Any]]:
    return {
        "text": {"params": {"max_tokens": tokens}},
        "reasoning": {"params": {"reasoning_tokens": tokens, "max_tokens": 1}},
        "tools": {"params": {"reasoning_tokens": tokens}, "tools": [TOOL]},
    }


async def run(url: str, connections: int, sessions: int, data: dict[str, Any]) -> int:
    """Stream ``sessions`` sessions at once on each of ``connections`` sockets; the events
    received."""
    async with asyncio.timeout(120), aiohttp.ClientSession() as http:
        counts = await asyncio.gather(
            *(one_socket(http, url, sessions, data) for _ in range(connections))
        )
    return sum(counts)


async def one_socket(
    http: aiohttp.ClientSession, url: str, sessions: int, data: dict[str, Any]
) -> int:
    events = 0
    async with http.ws_connect(url + "/ws") as ws:
        for n in range(sessions):
            start = {"type": "start", "session": f"s{n}", "data": {"prompt": "go", **data}}
            await ws.send_str(json.dumps(start))
        ended = 0
        async for message in ws:
            event = json.loads(message.data)
            events += 1
            if event["type"] == "error" and "session" not in event:
                raise RuntimeError(f"the server refused a start: {event['data']}")
            if event["type"] == "stream_end":
                ended += 1
                if ended == sessions:
                    break
    return events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    os.sched_setaffinity(0, {CLIENT_CORE})
    costs: dict[str, list[float]] = {kind: [] for kind in kinds(args.tokens)}
    with running(STACKS["tokenmux"]) as (url, pid):
        asyncio.run(run(url, 1, 10, kinds(args.tokens)["text"]))  # warm up
        order = list(kinds(args.tokens).items())
        for round_ in range(args.rounds):
            # Each round starts with another kind: no kind always runs on a warmer server.
            shift = round_ % len(order)
            for kind, data in order[shift:] + order[:shift]:
                before = cpu_seconds(pid)
                events = asyncio.run(run(url, args.connections, args.sessions, data))
                costs[kind].append((cpu_seconds(pid) - before) * 1e6 / events)
    text = statistics.median(costs["text"])
    print(f"server CPU per event, median of {args.rounds} rounds")
    shape = f"{args.connections} sockets x {args.sessions} sessions x {args.tokens} tokens"
    print(f"({shape}):")
    for kind, runs in costs.items():
        median = statistics.median(runs)
        print(f"  {kind:<10} {median:6.2f} us/event   {median / text:5.2f}x text")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
