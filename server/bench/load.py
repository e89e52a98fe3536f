"""The load itself: WebSocket connections carrying many sessions, or SSE streams.

Each client task records into one Recorder: time to first chunk (start sent to first
``content_chunk``), stream time (start sent to ``stream_end``), cancel latency (``cancel``
sent to ``stream_end``) and every error. Loops are bounded: a run ends when every stream
ended, or at ``spec.timeout_s``, whichever comes first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from server.bench.record import BenchSpec, Recorder
from server.bench.wsclient import WsClientProtocol, WsHandshakeError, connect

__all__ = ["OnStarted", "run_load"]

OnStarted = Callable[[], Awaitable[None]]
"""Awaited once, when every stream has received its first chunk (e.g. to sample RSS)."""


class _Run:
    def __init__(self, spec: BenchSpec, rec: Recorder, on_started: OnStarted | None) -> None:
        self.spec = spec
        self.rec = rec
        self.all_started = asyncio.Event()
        self._on_started = on_started
        self._started_hook: asyncio.Task[None] | None = None

    def first_chunk(self, sent_at: float) -> None:
        rec = self.rec
        rec.ttfc.append(time.perf_counter() - sent_at)
        rec.first_chunks += 1
        if rec.first_chunks == self.spec.streams:
            self._started_hook = asyncio.create_task(self._started())

    async def _started(self) -> None:
        if self._on_started is not None:
            await self._on_started()
        self.all_started.set()

    async def stop_condition(self) -> None:
        """Returns when the run may stop early (``until="started"``); never otherwise."""
        if self.spec.until == "started":
            await self.all_started.wait()
        else:
            await asyncio.Event().wait()

    def start_delay(self, n: int) -> float:
        """When (seconds after the run began) stream number ``n`` starts."""
        return self.spec.ramp_s * n / max(self.spec.streams, 1)


async def run_load(
    spec: BenchSpec,
    rec: Recorder,
    *,
    on_started: OnStarted | None = None,
) -> None:
    """Run ``spec`` to the end (or its timeout), recording into ``rec``."""
    run = _Run(spec, rec, on_started)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        if spec.mode == "ws":
            clients = [_ws_connection(http, run, c) for c in range(spec.connections)]
        else:
            clients = [_sse_stream(http, run, n) for n in range(spec.sessions)]
        load: asyncio.Future[Any] = asyncio.gather(*clients)
        stop: asyncio.Future[Any] = asyncio.ensure_future(run.stop_condition())
        try:
            async with asyncio.timeout(spec.timeout_s):
                await asyncio.wait([load, stop], return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            rec.error("bench_timeout")
        finally:
            stop.cancel()
            load.cancel()
            await asyncio.gather(load, stop, return_exceptions=True)
            if run._started_hook is not None:
                await asyncio.gather(run._started_hook, return_exceptions=True)


async def _ws_connection(http: aiohttp.ClientSession, run: _Run, index: int) -> None:
    spec, rec = run.spec, run.rec
    url = spec.url.replace("http://", "ws://") + "/ws"
    ids = [f"c{index}s{i}" for i in range(spec.sessions)]
    reader = _WsReader(run, len(ids))
    try:
        ws = await connect(url, "tokenmux.v1.json", reader.on_message)
    except (OSError, WsHandshakeError) as exc:
        rec.error(f"connect:{type(exc).__name__}")
        return
    reader.ws = ws
    sender = asyncio.create_task(_ws_send_starts(ws, run, index, ids, reader.sent_at))
    try:
        await asyncio.wait([reader.finished, ws.closed], return_when=asyncio.FIRST_COMPLETED)
        if not reader.finished.done():
            rec.error("ws_closed_early")
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        ws.close()


async def _ws_send_starts(
    ws: WsClientProtocol,
    run: _Run,
    index: int,
    ids: list[str],
    sent_at: dict[str, float],
) -> None:
    data = run.spec.start_data()
    began = run.rec.began
    for i, session in enumerate(ids):
        if run.spec.ramp_s:
            # Streams interleave across connections: stream n of the run is i*C + index.
            delay = began + run.start_delay(i * run.spec.connections + index) - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        sent_at[session] = time.perf_counter()
        ws.send_text(orjson.dumps({"type": "start", "session": session, "data": data}))


class _WsReader:
    """Handles every event of one connection, synchronously, as frames are parsed."""

    def __init__(self, run: _Run, expected: int) -> None:
        self.run = run
        self.expected = expected
        self.ended = 0
        self.ws: WsClientProtocol | None = None
        self.sent_at: dict[str, float] = {}
        self.cancel_at: dict[str, float] = {}
        self.got_first: set[str] = set()
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_message(self, payload: bytes, binary: bool) -> None:
        rec, spec = self.run.rec, self.run.spec
        if binary:
            rec.error("binary_frame")
            return
        event: dict[str, Any] = orjson.loads(payload)
        rec.events += 1
        type_ = event["type"]
        session = event.get("session")
        if type_ == "content_chunk":
            rec.chunks += 1
            if session not in self.got_first:
                self.got_first.add(session)  # type: ignore[arg-type]
                self.run.first_chunk(self.sent_at[session])  # type: ignore[index]
            if spec.cancel_after and event["data"]["index"] + 1 == spec.cancel_after:
                self.cancel_at[session] = time.perf_counter()  # type: ignore[index]
                assert self.ws is not None
                self.ws.send_text(orjson.dumps({"type": "cancel", "session": session}))
        elif type_ == "stream_end":
            now = time.perf_counter()
            rec.stream_time.append(now - self.sent_at[session])  # type: ignore[index]
            if session in self.cancel_at:
                rec.cancel_latency.append(now - self.cancel_at[session])
            rec.reasons[event["data"]["reason"]] += 1
            rec.done += 1
            self._ended()
        elif type_ == "ready":
            # The reference servers of bench/refs announce no limits.
            rec.server_limits = event["data"].get("limits", {})
        elif type_ == "error":
            rec.error(event["data"]["code"])
            if session is None and event["data"].get("ref", {}).get("type") == "start":
                self._ended()  # a refused start: that stream is over before it began

    def _ended(self) -> None:
        self.ended += 1
        if self.ended == self.expected and not self.finished.done():
            self.finished.set_result(None)


async def _sse_stream(http: aiohttp.ClientSession, run: _Run, n: int) -> None:
    spec, rec = run.spec, run.rec
    if spec.ramp_s:
        await asyncio.sleep(max(rec.began + run.start_delay(n) - time.perf_counter(), 0.0))
    data = spec.start_data()
    session = f"sse{n}-{time.monotonic_ns()}"
    body = {"prompt": data["prompt"], "llm_params": data["params"], "session_id": session}
    sent_at = time.perf_counter()
    cancel_at: float | None = None
    first = True
    loads = orjson.loads
    try:
        async with http.post(spec.url + "/api/stream", json=body) as response:
            if response.status != 200:
                rec.error(f"http_{response.status}")
                return
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                if line.startswith(b"data: [DONE]"):
                    return
                event = loads(line[6:])
                rec.events += 1
                type_ = event["type"]
                if type_ == "content_chunk":
                    rec.chunks += 1
                    if first:
                        first = False
                        run.first_chunk(sent_at)
                    if spec.cancel_after and event["data"]["index"] + 1 == spec.cancel_after:
                        cancel_at = time.perf_counter()
                        cancel_url = f"{spec.url}/api/sessions/{session}/cancel"
                        async with http.post(cancel_url) as cancelled:
                            await cancelled.read()
                elif type_ == "stream_end":
                    now = time.perf_counter()
                    rec.stream_time.append(now - sent_at)
                    if cancel_at is not None:
                        rec.cancel_latency.append(now - cancel_at)
                    rec.reasons[event["data"]["reason"]] += 1
                    rec.done += 1
                elif type_ == "error":
                    rec.error(event["data"]["code"])
    except aiohttp.ClientError as exc:
        rec.error(f"sse:{type(exc).__name__}")
