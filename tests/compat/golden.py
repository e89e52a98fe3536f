"""The encoders' answers to one rich session (reasoning, text, tool calls, sources), kept
as files the Node tests feed to the unmodified `openai` and `ai` packages.

    .venv/bin/python -m tests.compat.golden    # rewrites client_js/test/fixtures/compat/

tests/compat/test_golden.py fails when the files and the encoders disagree.
"""

from __future__ import annotations

from pathlib import Path

from server.protocol.openai_encoder import ChatCompletionChunks
from server.protocol.ui_encoder import UiMessageStream
from tests.compat.events import Events

__all__ = ["FIXTURES", "golden_files"]

FIXTURES = Path(__file__).resolve().parents[2] / "client_js" / "test" / "fixtures" / "compat"


def rich_session() -> Events:
    """One answer with every §9 kind the formats carry, as PROTOCOL.md §9 shapes them."""
    return (
        Events()
        .start("sim", "sim-1")
        .reasoning("Checking ", "the weather.")
        .text("Let me look ", "that up.")
        .tool_call("call_1", "get_weather", 0, '{"city":', '"Oslo"}', arguments={"city": "Oslo"})
        .add("source", url="https://example.com/sim/1", title="Sim source")
        .add(
            "metadata",
            finish_reason="tool_calls",
            raw_finish_reason="tool_use",
            ttft_ms=5,
            usage={"input_tokens": 9, "output_tokens": 20, "reasoning_tokens": 4},
        )
        .complete({"input_tokens": 9, "output_tokens": 20, "estimated": False})
    )


def golden_files() -> dict[str, bytes]:
    events = rich_session().events
    openai = ChatCompletionChunks("chatcmpl-golden", created=1700000000, include_usage=True)
    ui = UiMessageStream("msg-golden")
    return {
        "openai-rich.sse": b"".join(openai.encode([e]) for e in events) + openai.finish(),
        "ui-rich.sse": b"".join(ui.encode([e]) for e in events) + ui.finish(),
    }


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, content in golden_files().items():
        (FIXTURES / name).write_bytes(content)
        print(FIXTURES / name)
