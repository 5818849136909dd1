"""Figures for people: separators, sensible digits, units, round tick steps; never e-notation."""

from __future__ import annotations

import math

import pytest

from llmops.humanize import nice_step, nice_ticks, number, percent, seconds, tick_label, usd, with_unit


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (181.5386969467689, "181.5"),
        (11010.3, "11,010"),
        (1234567.0, "1,234,567"),
        (12.345, "12.35"),
        (4.0, "4"),
        (16, "16"),
        (0.011019283746556474, "0.0110"),
        (0.000123456, "0.000123"),
        (1e-9, "0.00000000100"),
        (0.0, "0"),
        (-5.5, "-5.50"),
        (None, "-"),
        (float("nan"), "-"),
    ],
)
def test_number(value: float | None, text: str) -> None:
    assert number(value) == text


def test_units_and_shares() -> None:
    assert percent(0.011019283746556474) == "1.1%"
    assert percent(0.25) == "25.0%" and percent(0) == "0%" and percent(0.0004) == "<0.1%"
    assert percent(None) == "-"
    assert with_unit(181.5386969467689, "ms") == "181.5 ms" and with_unit(11010.3, "tok/s") == "11,010 tok/s"
    assert seconds(3.175) == "3.17 s" and seconds(0.85) == "850 ms" and seconds(125) == "2 min 05 s"
    assert usd(0.01234) == "$0.0123" and usd(1234.5) == "$1,234.50"
    assert number(22.4, signed=True) == "+22.40" and number(-3, signed=True) == "-3"


def test_no_e_notation_anywhere() -> None:
    for exp in range(-12, 13):
        for mantissa in (1, 2.5, 9.99):
            for text in (number(mantissa * 10**exp), percent(mantissa * 10**exp)):
                assert "e" not in text.lower(), text


@pytest.mark.parametrize(
    ("lo", "hi", "labels"),
    [
        (0, 86_000, ["0", "20,000", "40,000", "60,000", "80,000", "100,000"]),
        (0, 2_750, ["0", "1,000", "2,000", "3,000"]),
        (0, 3.175, ["0", "1", "2", "3", "4"]),
        (12.3, 47.9, ["10", "20", "30", "40", "50"]),
        (0, 1, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
    ],
)
def test_ticks_are_round_and_cover_the_range(lo: float, hi: float, labels: list[str]) -> None:
    ticks = nice_ticks(lo, hi)
    step = nice_step(hi - lo)
    assert [tick_label(t, step) for t in ticks] == labels
    assert ticks[0] <= lo and ticks[-1] >= hi
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 5)


def test_counts_get_whole_number_ticks() -> None:
    assert nice_ticks(0, 1, minimum=1) == [0, 1]
    assert nice_ticks(0, 3, minimum=1) == [0, 1, 2, 3]
    assert nice_step(86_000, minimum=1) == 20_000
