"""The hypervisor's steal, read from /proc/stat: the parser on known text, the meter on the real file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from llmops.steal import StealMeter, note, parse

STAT = b"""cpu  1264598 1076 150767 590464 6248 0 11304 124743 0 0
cpu0 569638 409 70011 364569 2060 0 4391 63096 0 0
cpu1 694959 667 80756 225895 4188 0 6913 61647 0 0
intr 123 4 5
ctxt 99
"""


def test_parse_sums_the_per_cpu_lines_it_is_asked_for() -> None:
    assert parse(STAT, [0]) == (63096, 569638 + 409 + 70011 + 364569 + 2060 + 0 + 4391 + 63096)
    assert parse(STAT, [1])[0] == 61647
    both = parse(STAT)
    assert both[0] == 63096 + 61647  # the per-CPU lines, not the machine-wide sum line as well
    assert both[1] == parse(STAT, [0])[1] + parse(STAT, [1])[1]
    assert parse(STAT, [7]) == (0, 0)
    assert parse(b"cpu10 1 1 1 1 1 1 1 5 0 0\n", [1]) == (0, 0)  # cpu1 is not cpu10


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="Linux only: /proc/stat")
def test_the_meter_agrees_with_the_kernels_count() -> None:
    hz = os.sysconf("SC_CLK_TCK")
    before = parse(Path("/proc/stat").read_bytes())
    meter = StealMeter()
    end = time.perf_counter() + 0.05
    while time.perf_counter() < end:  # some CPU time for the counters to move
        pass
    stolen, share = meter.stolen_s(), meter.share()
    after = parse(Path("/proc/stat").read_bytes())
    meter.close()
    assert stolen is not None and 0 <= stolen <= (after[0] - before[0]) / hz
    assert share is not None and 0.0 <= share <= 1.0
    assert meter.stolen_s() is None and meter.share() is None  # closed: nothing to read


def test_the_note_speaks_only_when_the_host_took_enough() -> None:
    assert note([None, None]) is None
    assert note([0.0, 0.019]) is None
    said = note([0.01, 0.125, None])
    assert said is not None and "12.5%" in said and "steal" in said
