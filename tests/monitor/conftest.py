"""Fixtures for the monitor tests: the real promtool, and rules generated from a known workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROMTOOL_TESTS = HERE / "promtool"
# The workspace the promtool unit tests were written for: default thresholds, these SLOs.
TEST_SLOS = {"ttft_p99_ms": 2000, "error_rate": 0.01}


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: `make install` installs Debian's prometheus package")
    return path


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.fail("prometheus is not installed: `make install` installs Debian's prometheus package")
    return path
