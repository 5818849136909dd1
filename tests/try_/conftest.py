"""A calibration server (llmops.bench.fake_server) shared by this folder's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmops.bench.fake_server import spawn
from tests.browser import browser  # noqa: F401  (the shared headless Chromium fixture)


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    """A local OpenAI/Anthropic-shaped streaming server: 20 ms to the first token, 5 ms between tokens."""
    proc, base = spawn(20, 5)
    yield base
    proc.terminate()
    proc.wait(5)
