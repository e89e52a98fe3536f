"""The fixture files the Node tests feed to the openai and ai packages are the encoders'."""

from __future__ import annotations

from tests.compat.golden import FIXTURES, golden_files


def test_golden_files_are_current() -> None:
    for name, content in golden_files().items():
        assert (FIXTURES / name).read_bytes() == content, (
            f"{name} is stale: run .venv/bin/python -m tests.compat.golden"
        )
