"""`tokenmux chat` in a real pseudo-terminal (pexpect), against the real server, whose
provider "p" is the local OpenAI-wire upstream: it records each request and the moment its
connection closed, so a cancel is seen where it matters."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest

from server.app import RunningServer
from server.config import Config
from tests.conftest import ConfigFactory
from tests.providers.conftest import entry
from tests.providers.upstream import Reply, Upstream, start_upstream
from tests.transports.test_resume_functional import expected_text
from tokenmux import Client

ROOT = Path(__file__).resolve().parent.parent.parent
Start = Callable[[Config], Any]
PROMPT = "\r\n> "  # the prompt at the start of a line


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server, runner = await start_upstream()
    yield server
    await runner.cleanup()


@pytest.fixture
async def chat_server(
    upstream: Upstream, start: Start, make_config: ConfigFactory
) -> RunningServer:
    config = make_config(providers={"p": entry("openai", upstream, "m1")})
    server: RunningServer = await start(config)
    return server


Steps = Callable[["pexpect.spawn[str]"], None]


async def chat_session(url: str, args: tuple[str, ...], steps: Steps, *, status: int = 0) -> None:
    """Run `tokenmux chat` in a pseudo-terminal through ``steps``, then expect its exit.

    pexpect blocks, so it runs in a thread while this loop keeps serving."""

    def run() -> None:
        env = {**os.environ, "PYTHONASYNCIODEBUG": "", "NO_COLOR": "1", "TERM": "dumb"}
        chat = pexpect.spawn(
            sys.executable,
            ["-m", "server", "chat", "--url", url, *args],
            cwd=str(ROOT),
            env=env,
            encoding="utf-8",
            timeout=15,
            dimensions=(40, 200),
        )
        try:
            steps(chat)
            chat.expect(pexpect.EOF)
        finally:
            chat.close(force=True)
        assert chat.exitstatus == status, chat.before

    await asyncio.to_thread(run)


async def test_ctrl_c_cancels_the_answer_closes_the_upstream_and_keeps_the_chat(
    chat_server: RunningServer, upstream: Upstream
) -> None:
    upstream.plan("m1", Reply(text="alpha beta gamma delta", chunks=4, hang_after=1))
    shown_at: list[float] = []

    def steps(chat: pexpect.spawn[str]) -> None:
        chat.expect_exact(PROMPT)
        chat.sendline("Hello")
        chat.expect_exact("alpha")  # the first delta shows while the upstream holds on
        chat.sendintr()
        chat.expect_exact("cancelled")
        shown_at.append(time.monotonic())  # the loop's clock, which the upstream records
        chat.expect(r"TTFT \d+ ms")
        chat.expect_exact(PROMPT)  # still running, back at the prompt
        chat.sendintr()
        chat.expect_exact("Ctrl-C again")
        chat.sendintr()

    await chat_session(chat_server.url, ("--provider", "p"), steps)
    record = upstream.requests("m1")[0]
    # tokenmux closes the provider's connection before it acknowledges; when the upstream's
    # own loop notices is not ordered with the chat's output, so allow it a second either way.
    async with asyncio.timeout(1.0):
        await record.disconnected.wait()
    assert record.disconnected_at is not None
    assert abs(record.disconnected_at - shown_at[0]) < 1.0


async def test_answers_stream_keep_history_and_switch_provider_and_model(
    chat_server: RunningServer, upstream: Upstream
) -> None:
    upstream.plan("m1", Reply(text="Paris is the capital.", chunks=3, chunk_delay_s=0.05))
    upstream.plan("m2", Reply(text="Madrid.", chunks=2))

    def steps(chat: pexpect.spawn[str]) -> None:
        chat.expect_exact(PROMPT)
        chat.sendline("Capital of France?")
        chat.expect_exact("Paris is the capital.")
        chat.expect(r"TTFT \d+ ms · 7 tokens · [\d.]+ tokens/s")  # the upstream's usage
        chat.expect_exact(PROMPT)
        chat.sendline("/model m2")
        chat.expect_exact("model: m2")
        chat.sendline("And Spain?")
        chat.expect_exact("Madrid.")
        chat.expect_exact("tokens/s")
        chat.sendline("/provider nope")
        chat.expect_exact("unknown provider 'nope'")
        chat.sendline("/provider sim")
        chat.expect_exact("provider: sim")
        chat.sendline("Echo me")
        chat.expect_exact("Echo me")  # the simulator repeats the last user turn
        chat.expect_exact("tokens/s")
        chat.expect_exact(PROMPT)
        chat.sendeof()

    await chat_session(chat_server.url, ("--provider", "p", "--system", "Be brief."), steps)
    first = upstream.requests("m1")[0].body
    second = upstream.requests("m2")[0].body
    assert first["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert second["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris is the capital."},
        {"role": "user", "content": "And Spain?"},
    ]


async def test_a_failed_answer_is_reported_and_the_chat_goes_on(
    chat_server: RunningServer, upstream: Upstream
) -> None:
    upstream.plan("m1", Reply(status=401))  # the provider refuses the server's key

    def steps(chat: pexpect.spawn[str]) -> None:
        chat.expect_exact(PROMPT)
        chat.sendline("Hi")
        chat.expect_exact("error: provider_auth")
        chat.expect_exact(PROMPT)
        chat.sendline("/quit")

    await chat_session(chat_server.url, ("--provider", "p", "--param", "max_tokens=5"), steps)


async def test_an_unreachable_server_is_one_line_and_exit_1() -> None:
    def steps(chat: pexpect.spawn[str]) -> None:
        chat.expect_exact("tokenmux chat: connection_failed")

    await chat_session("http://127.0.0.1:9", (), steps, status=1)


async def test_piped_input_is_a_transcript(chat_server: RunningServer) -> None:
    """Without a terminal (a script, CI) each line is echoed, then answered."""
    chat = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "chat", "--url", chat_server.url,
        "--param", "max_tokens=2",
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONASYNCIODEBUG": ""},
    )  # fmt: skip
    out, _ = await chat.communicate(b"Hello pipe\n/model sim-1\n")
    assert chat.returncode == 0
    transcript = out.decode()
    assert "\n> Hello pipe\nHello pipe " in transcript and "tokens/s" in transcript
    assert "> /model sim-1\nmodel: sim-1\n> \n" in transcript


async def test_watch_follows_a_session_of_another_client_to_its_end(
    chat_server: RunningServer,
) -> None:
    params = {"max_tokens": 30, "tokens_per_second": 30}
    text = await expected_text(chat_server, "shared", params)

    def steps(chat: pexpect.spawn[str]) -> None:
        chat.expect_exact("watching")
        chat.expect_exact(text)  # the whole answer, as its owner gets it
        chat.expect(r"TTFT \d+ ms")

    async with Client(chat_server.url) as owner:
        session = await owner.start(prompt="shared", params=params)
        assert session.resume_token is not None
        args = ("--watch", session.id, "--token", session.resume_token)
        owners, _ = await asyncio.gather(session.text(), chat_session(chat_server.url, args, steps))
    assert owners == text  # the owner kept its session to the end


async def test_ctrl_c_stops_watching_and_the_session_goes_on(chat_server: RunningServer) -> None:
    async with Client(chat_server.url) as owner:
        session = await owner.start(
            prompt="on", params={"max_tokens": 200, "tokens_per_second": 40}
        )
        assert session.resume_token is not None
        first_words = "on"

        def steps(chat: pexpect.spawn[str]) -> None:
            chat.expect_exact("watching")
            chat.expect_exact(first_words)
            chat.sendintr()
            chat.expect_exact("stopped watching")

        await chat_session(
            chat_server.url, ("--watch", session.id, "--token", session.resume_token), steps
        )
        assert not session.ended
        assert (await session.result()).reason == "complete"
        wrong = ("--watch", session.id, "--token", "nope")

        def refused(chat: pexpect.spawn[str]) -> None:
            chat.expect_exact("unauthorized")

        await chat_session(chat_server.url, wrong, refused, status=1)
