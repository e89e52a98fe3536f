"""What a reader (PROTOCOL.md section 12, ``watch``) costs the server.

    .venv/bin/python bench/readers.py [--rounds 3] [--sessions 20] [--tokens 200]
                                      [--readers 0,1,4,16] [--idle-readers 500]

One tokenmux process (pinned to core 0, as bench/run.py runs it, with bench/bench.yaml).

CPU: one owner socket starts ``--sessions`` detachable sessions of ``--tokens`` chunks
(the simulator unpaced, after a 1 s time to first token, so every reader is attached before
the first chunk); then R reader sockets each ``watch`` every session. Server CPU is read
from /proc around each run. The cost of a reader is (CPU with R readers - CPU with none)
/ (events the readers received), the median over rounds; the owner's own cost per event is
printed next to it.

Memory: one session that holds after its first chunk, ``--idle-readers`` sockets opened
(RSS sampled), then each watches the session (RSS sampled again): bytes per reader, apart
from and including its connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import CLIENT_CORE, STACKS, cpu_seconds, rss_bytes, running  # noqa: E402

Ws = aiohttp.ClientWebSocketResponse


async def started(
    http: aiohttp.ClientSession, url: str, sessions: int, params: dict[str, Any]
) -> tuple[Ws, dict[str, str]]:
    """An owner socket with ``sessions`` detachable sessions begun; their tokens."""
    ws = await http.ws_connect(url + "/ws", max_msg_size=0)
    await ws.receive()  # ready
    for n in range(sessions):
        data = {"prompt": "go", "params": params, "on_disconnect": "detach"}
        await ws.send_str(json.dumps({"type": "start", "session": f"s{n}", "data": data}))
    tokens: dict[str, str] = {}
    while len(tokens) < sessions:
        event = json.loads((await ws.receive()).data)
        if event["type"] == "stream_start":
            tokens[event["session"]] = event["data"]["resume_token"]
        elif event["type"] == "error":
            raise RuntimeError(f"refused: {event['data']}")
    return ws, tokens


async def watch_all(ws: Ws, tokens: dict[str, str], after_seq: int = 0) -> None:
    for sid, token in tokens.items():
        data = {"resume_token": token, "after_seq": after_seq}
        await ws.send_str(json.dumps({"type": "watch", "session": sid, "data": data}))


async def until_ended(ws: Ws, sessions: int) -> int:
    events = ended = 0
    async for message in ws:
        event = json.loads(message.data)
        if "session" not in event:
            if event["type"] == "error":
                raise RuntimeError(f"refused: {event['data']}")
            continue
        events += 1
        if event["type"] == "stream_end":
            ended += 1
            if ended == sessions:
                break
    return events


async def cpu_run(
    url: str, pid: int, readers: int, sessions: int, tokens: int
) -> tuple[float, int, int]:
    """Server CPU seconds, events the owner got, events the readers got."""
    params = {"max_tokens": tokens, "ttft_ms": 1000}
    async with asyncio.timeout(120), aiohttp.ClientSession() as http:
        before = cpu_seconds(pid)
        owner, ids = await started(http, url, sessions, params)
        watchers = [await http.ws_connect(url + "/ws", max_msg_size=0) for _ in range(readers)]
        for ws in watchers:
            await ws.receive()  # ready
            await watch_all(ws, ids)
        got = await asyncio.gather(
            until_ended(owner, sessions), *(until_ended(ws, sessions) for ws in watchers)
        )
        for ws in (owner, *watchers):
            await ws.close()
        return cpu_seconds(pid) - before, got[0] + sessions, sum(got[1:])


async def memory_run(url: str, pid: int, readers: int) -> tuple[float, float]:
    """Bytes per reader: the watch alone, and with its connection."""
    connector = aiohttp.TCPConnector(limit=0)  # aiohttp's default stops at 100 sockets
    async with asyncio.timeout(300), aiohttp.ClientSession(connector=connector) as http:
        owner, ids = await started(http, url, 1, {"hang_at": 1})
        await asyncio.sleep(0.5)
        base = rss_bytes(pid)
        sockets = [await http.ws_connect(url + "/ws") for _ in range(readers)]
        for ws in sockets:
            await ws.receive()  # ready
        await asyncio.sleep(1.0)
        connected = rss_bytes(pid)
        for ws in sockets:
            await watch_all(ws, ids, after_seq=-1)
        for ws in sockets:  # each has its replay: the watch is in place
            while json.loads((await ws.receive()).data)["type"] != "content_chunk":
                pass
        await asyncio.sleep(1.0)
        watching = rss_bytes(pid)
        await owner.send_str(json.dumps({"type": "cancel", "session": "s0"}))
        for ws in (owner, *sockets):
            await ws.close()
    return (watching - connected) / readers, (watching - base) / readers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--readers", default="0,1,4,16")
    parser.add_argument("--idle-readers", type=int, default=500)
    args = parser.parse_args()
    counts = [int(n) for n in args.readers.split(",")]
    os.sched_setaffinity(0, {CLIENT_CORE})
    with running(STACKS["tokenmux"]) as (url, pid):
        asyncio.run(cpu_run(url, pid, 1, 5, 50))  # warm up
        cpu: dict[int, list[tuple[float, int, int]]] = {n: [] for n in counts}
        for round_ in range(args.rounds):
            shift = round_ % len(counts)
            for n in counts[shift:] + counts[:shift]:
                cpu[n].append(asyncio.run(cpu_run(url, pid, n, args.sessions, args.tokens)))
        started_at = time.monotonic()
        per_watch, per_reader = asyncio.run(memory_run(url, pid, args.idle_readers))
        memory_s = time.monotonic() - started_at
    base = statistics.median(cpu_s for cpu_s, _, _ in cpu[0]) if 0 in cpu else None
    owner_events = cpu[counts[0]][0][1]
    print(f"{args.sessions} sessions x {args.tokens} tokens, median of {args.rounds} rounds:")
    if base is not None:
        print(f"  no reader      {base * 1e6 / owner_events:6.2f} us server CPU per event (owner)")
    for n in counts:
        if n == 0 or base is None:
            continue
        extra = statistics.median(
            (cpu_s - base) * 1e6 / reader_events for cpu_s, _, reader_events in cpu[n]
        )
        print(f"  {n:>3} readers    {extra:6.2f} us server CPU per event per reader")
    print(f"memory, {args.idle_readers} readers of one session ({memory_s:.0f} s):")
    print(f"  {per_watch / 1024:6.2f} KiB per reader (the watch on an open connection)")
    print(f"  {per_reader / 1024:6.2f} KiB per reader (its connection included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
