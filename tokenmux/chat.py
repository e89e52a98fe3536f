"""``tokenmux chat``: an interactive terminal chat over one WebSocket.

Tokens are printed as they arrive, reasoning dimmed, tool calls on lines of their own.
Ctrl-C during an answer cancels it (the server acknowledges, and its provider request is
closed) and returns to the prompt; Ctrl-C at the prompt twice in a row, or Ctrl-D, quits.
The conversation is kept and sent as ``messages`` with every turn. ``--watch SESSION
--token T`` instead follows someone else's session as one more reader (PROTOCOL.md §12).

Input is read from the terminal in its normal line mode by a reader callback on the event
loop (no thread), so a Ctrl-C is always a signal the loop handles, never a lost read. That
needs a POSIX terminal (``add_reader`` on stdin, ``add_signal_handler``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from tokenmux.client import Client, Session
from tokenmux.errors import TokenmuxError
from tokenmux.events import (
    ContentChunk,
    ErrorEvent,
    Event,
    Metadata,
    ReasoningChunk,
    Source,
    StreamEnd,
    ToolCallEnd,
    ToolCallStart,
)

__all__ = ["main"]

PROMPT = "> "
HELP = """\
/provider NAME   answer with this provider (no name: list them)
/model NAME      use this model (no name: the provider's default)
/clear           forget the conversation so far
/quit            leave (or Ctrl-D; or Ctrl-C twice at the prompt)
Ctrl-C while an answer streams cancels it."""

_EOF = object()  # stdin closed
_INTERRUPT = object()  # Ctrl-C at the prompt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenmux chat", description="Chat with a model through a tokenmux server."
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("TOKENMUX_URL", "http://127.0.0.1:8080"),
        help="the server (default: $TOKENMUX_URL or http://127.0.0.1:8080)",
    )
    parser.add_argument(
        "--token",
        help="bearer token when the server has auth on (default: $TOKENMUX_TOKEN); "
        "with --watch: the session's resume token",
    )
    parser.add_argument(
        "--bearer",
        default=os.environ.get("TOKENMUX_TOKEN"),
        help="bearer token when the server has auth on, also with --watch "
        "(default: $TOKENMUX_TOKEN)",
    )
    parser.add_argument(
        "--watch",
        metavar="SESSION",
        help="follow someone else's session live (give its resume token with --token); "
        "Ctrl-C stops following, the session goes on",
    )
    parser.add_argument("--provider", help="provider to start with (default: the server's)")
    parser.add_argument("--model", help="model to start with (default: the provider's)")
    parser.add_argument("--system", help="system prompt")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a generation parameter, e.g. temperature=0.2 (a JSON value, else a string)",
    )
    parser.add_argument("--encoding", choices=("json", "msgpack"), default="json")
    parser.add_argument("--no-color", action="store_true", help="no ANSI colors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        params = dict(_param(item) for item in args.param)
    except ValueError as exc:
        print(f"tokenmux chat: {exc}", file=sys.stderr)
        return 2
    color = not args.no_color and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    if args.watch and not args.token:
        print("tokenmux chat: --watch needs the session's resume token: --token", file=sys.stderr)
        return 2
    bearer = args.bearer if args.watch else (args.token or args.bearer)
    client = Client(args.url, token=bearer, encoding=args.encoding)
    chat = Chat(
        client,
        sys.stdout,
        provider=args.provider,
        model=args.model,
        system=args.system,
        params=params,
        color=color,
    )
    try:
        if args.watch:
            return asyncio.run(chat.follow(args.watch, args.token))
        return asyncio.run(chat.run())
    except KeyboardInterrupt:  # Ctrl-C before the chat took over the signal (connecting)
        return 130


def _param(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--param {item!r}: use KEY=VALUE")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


class Style:
    """ANSI styles, or nothing when the output is not a color terminal."""

    def __init__(self, enabled: bool) -> None:
        on = enabled
        self.dim = "\x1b[2m" if on else ""
        self.red = "\x1b[31m" if on else ""
        self.yellow = "\x1b[33m" if on else ""
        self.cyan = "\x1b[36m" if on else ""
        self.reset = "\x1b[0m" if on else ""


class Chat:
    """The prompt loop, the answer renderer and the Ctrl-C policy."""

    def __init__(
        self,
        client: Client,
        out: TextIO,
        *,
        provider: str | None = None,
        model: str | None = None,
        system: str | None = None,
        params: dict[str, Any] | None = None,
        color: bool = False,
    ) -> None:
        self.client = client
        self.out = out
        self.style = Style(color)
        self.provider = provider
        self.model = model
        self.system = system
        self.params = params or {}
        self.history: list[dict[str, str]] = []
        self._lines: asyncio.Queue[object] = asyncio.Queue()
        self._pending = b""
        self._echo = False
        self._answering = False
        self._session: Session | None = None
        self._cancel_wanted = False
        self._cancelling: asyncio.Task[Any] | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        try:
            ready = await self.client.connect()
        except TokenmuxError as exc:
            print(f"tokenmux chat: {exc}", file=sys.stderr)
            await self.client.close()
            return 1
        default = self.provider or ready.default_provider or "?"
        self.say(
            f"{self.style.dim}tokenmux chat · {self.client.url} · {ready.server} · "
            f"providers: {', '.join(ready.providers)} (using {default})\n"
            f"Ctrl-C stops an answer; Ctrl-C twice or Ctrl-D quits; /help{self.style.reset}\n"
        )
        stdin = sys.stdin.fileno()
        self._echo = not os.isatty(stdin)  # piped input: show each line as if typed
        loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
        try:
            loop.add_reader(stdin, self._on_readable, stdin)
        except PermissionError:  # a regular file (or /dev/null): not pollable, read it whole
            self._feed(await asyncio.to_thread(sys.stdin.buffer.read))
            self._feed(b"")
        try:
            await self._converse()
        finally:
            loop.remove_reader(stdin)
            loop.remove_signal_handler(signal.SIGINT)
            await self.client.close()
        return 0

    async def follow(self, session_id: str, token: str) -> int:
        """``--watch``: print someone else's session as it streams, as one more reader
        (PROTOCOL.md §12); Ctrl-C stops following and leaves the session running."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        render = Renderer(self, began)
        try:
            session = await self.client.watch(session_id, token=token)
        except TokenmuxError as exc:
            print(f"tokenmux chat: {exc}", file=sys.stderr)
            await self.client.close()
            return 1
        self.say(f"{self.style.dim}watching {session_id} · Ctrl-C stops{self.style.reset}\n")
        follower = asyncio.current_task()
        assert follower is not None
        loop.add_signal_handler(signal.SIGINT, follower.cancel)
        try:
            async for event in session:
                render.show(event, loop.time())
        except asyncio.CancelledError:
            render.close()
            self.say(f"{self.style.yellow}stopped watching{self.style.reset}\n")
            return 0
        except TokenmuxError as exc:
            render.failed(exc)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            await self.client.close()
        render.close()
        return 0 if render.end is not None else 1

    def say(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    # Input.

    def _on_readable(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(fd)
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Queue the complete lines of ``data``; empty ``data`` is the end of input."""
        if not data:
            if self._pending:
                self._lines.put_nowait(self._pending.decode(errors="replace"))
            self._lines.put_nowait(_EOF)
            return
        self._pending += data
        while b"\n" in self._pending:
            line, _, self._pending = self._pending.partition(b"\n")
            self._lines.put_nowait(line.decode(errors="replace"))

    def _on_interrupt(self) -> None:
        if not self._answering:
            self._lines.put_nowait(_INTERRUPT)
        elif self._session is None:
            self._cancel_wanted = True  # the start is on its way: cancel once it is begun
        elif self._cancelling is None:
            self._cancelling = asyncio.create_task(self._session.cancel(), name="chat cancel")

    async def _converse(self) -> None:
        interrupted = False
        while True:
            self.say(PROMPT)
            line = await self._lines.get()
            if line is _EOF:
                self.say("\n")
                return
            if line is _INTERRUPT:
                if interrupted:
                    self.say("\n")
                    return
                interrupted = True
                self.say("\n(Ctrl-C again or Ctrl-D to quit)\n")
                continue
            interrupted = False
            assert isinstance(line, str)
            if self._echo:
                self.say(line + "\n")
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if not self._command(text):
                    return
                continue
            await self._answer(text)

    def _command(self, text: str) -> bool:
        """Run a slash command; False to quit."""
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        ready = self.client.ready
        match name:
            case "/quit" | "/exit":
                return False
            case "/help":
                self.say(HELP + "\n")
            case "/clear":
                self.history.clear()
                self.say("(conversation cleared)\n")
            case "/provider" if not arg:
                providers = ", ".join(ready.providers) if ready else "?"
                self.say(f"provider: {self.provider or 'default'} (served: {providers})\n")
            case "/provider":
                if ready is not None and arg not in ready.providers:
                    self.say(f"unknown provider {arg!r}; served: {', '.join(ready.providers)}\n")
                else:
                    self.provider, self.model = arg, None
                    self.say(f"provider: {arg}\n")
            case "/model":
                self.model = arg or None
                self.say(f"model: {self.model or 'the provider default'}\n")
            case _:
                self.say(f"unknown command {name}; /help lists them\n")
        return True

    # Answers.

    async def _answer(self, text: str) -> None:
        loop = asyncio.get_running_loop()
        self.history.append({"role": "user", "content": text})
        self._answering, self._cancel_wanted, self._cancelling = True, False, None
        began = loop.time()
        render = Renderer(self, began)
        session: Session | None = None
        try:
            session = await self.client.start(
                messages=self.history,
                provider=self.provider,
                model=self.model,
                system=self.system,
                params=self.params or None,
            )
            self._session = session
            if self._cancel_wanted:
                self._cancelling = asyncio.create_task(session.cancel(), name="chat cancel")
            async for event in session:
                render.show(event, loop.time())
        except TokenmuxError as exc:
            render.failed(exc)
        finally:
            cancelling = self._cancelling
            self._answering, self._session, self._cancelling = False, None, None
            if cancelling is not None:
                with contextlib.suppress(TokenmuxError):
                    await cancelling  # the end arrived: this is already settled
        reply = session.content if session is not None else ""
        if reply:
            self.history.append({"role": "assistant", "content": reply})
        else:
            self.history.pop()  # nothing came back: the question is not part of the talk
        render.close()


class Renderer:
    """Prints one answer's events as they arrive, then its outcome and a progress line."""

    def __init__(self, chat: Chat, began: float) -> None:
        self.chat = chat
        self.style = chat.style
        self.began = began
        self.first_at: float | None = None
        self.ended_at: float | None = None
        self.end: StreamEnd | None = None
        self.error: str | None = None
        self.sources: list[Source] = []
        self.refusal: str | None = None
        self._reasoning = False
        self._at_line_start = True

    def write(self, text: str) -> None:
        if text:
            self.chat.say(text)
            self._at_line_start = text.endswith("\n")

    def _set_style(self, code: str) -> None:
        self.chat.say(code)  # an escape code moves nothing on the line

    def show(self, event: Event, now: float) -> None:
        s = self.style
        if isinstance(event, ContentChunk | ReasoningChunk) and self.first_at is None:
            self.first_at = now
        match event:
            case ReasoningChunk():
                if not self._reasoning:
                    self._reasoning = True
                    self._set_style(s.dim)
                self.write(event.content)
            case ContentChunk():
                self._end_reasoning()
                self.write(event.content)
            case ToolCallStart():
                self._end_reasoning()
                self._newline()
                self.write(f"{s.cyan}⚙ {event.name} …{s.reset}\n")
            case ToolCallEnd():
                self._newline()
                shown = (
                    json.dumps(event.arguments, ensure_ascii=False)
                    if event.error is None
                    else f"{event.arguments_text!r} ({event.error})"
                )
                self.write(f"{s.cyan}⚙ {event.name}({shown}){s.reset}\n")
            case Source():
                self.sources.append(event)
            case Metadata(refusal=str(refusal)):
                self.refusal = refusal
            case ErrorEvent():
                self.error = f"{event.code}: {event.message}"
            case StreamEnd():
                self._end_reasoning()
                self.end, self.ended_at = event, now

    def failed(self, error: TokenmuxError) -> None:
        self.error = str(error)

    def close(self) -> None:
        """The outcome, the sources and the progress line."""
        s = self.style
        self._end_reasoning()
        self._newline()
        if self.refusal:
            self.write(f"{s.yellow}refused: {self.refusal}{s.reset}\n")
        for number, source in enumerate(self.sources, 1):
            label = " · ".join(x for x in (source.title, source.url) if x)
            self.write(f"{s.dim}[{number}] {label or source.cited_text or 'source'}{s.reset}\n")
        reason = self.end.reason if self.end else None
        if reason == "cancelled":
            self.write(f"{s.yellow}cancelled{s.reset}\n")
        elif self.error:
            self.write(f"{s.red}error: {self.error}{s.reset}\n")
        elif reason not in (None, "complete"):
            self.write(f"{s.red}ended: {reason}{s.reset}\n")
        if self.end is not None:
            self.write(f"{s.dim}{self.progress()}{s.reset}\n")

    def progress(self) -> str:
        """``TTFT 152 ms · 64 tokens · 41.3 tokens/s · 1.7 s`` (times seen by this client)."""
        assert self.end is not None and self.ended_at is not None
        total_s = self.ended_at - self.began
        usage = self.end.usage
        tokens = usage.output_tokens if usage is not None else None
        about = "~" if usage is not None and usage.estimated else ""
        parts = []
        if self.first_at is not None:
            parts.append(f"TTFT {(self.first_at - self.began) * 1000:.0f} ms")
        if tokens is not None:
            parts.append(f"{about}{tokens} tokens")
            streaming_s = self.ended_at - (self.first_at or self.began)
            if tokens and streaming_s > 0:
                parts.append(f"{tokens / streaming_s:.1f} tokens/s")
        parts.append(f"{total_s:.2f} s")
        return " · ".join(parts)

    def _end_reasoning(self) -> None:
        if self._reasoning:
            self._reasoning = False
            self._set_style(self.style.reset)
            self._newline()

    def _newline(self) -> None:
        if not self._at_line_start:
            self.write("\n")
