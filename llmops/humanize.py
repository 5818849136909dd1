"""Figures for a person: thousands separators, sensible digits, units; never e-notation.

The one formatter for numbers that people read (the bench table, its HTML report, gate lines). Machine
output (`--json`, result files) keeps full precision and never goes through here.
"""

from __future__ import annotations

import math

DASH = "-"


def number(value: float | None, *, signed: bool = False) -> str:
    """`12,345`, `181.5`, `12.35`, `1.25`, `0.0110`: four significant digits up to 1,000, whole numbers
    with separators above it, three significant digits below 1; integral values without decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if isinstance(value, float) and math.isinf(value):
        return ("-" if value < 0 else "+" if signed else "") + "∞"
    sign = "+" if signed and value > 0 else ""
    size = abs(value)
    if float(value).is_integer() or size >= 1000:
        return f"{value:{sign},.0f}"
    if size >= 100:
        spec = ".1f"
    elif size >= 1:
        spec = ".2f"
    else:  # three significant digits, in fixed notation however small
        spec = f".{min(2 - math.floor(math.log10(size)), 12)}f"
    return f"{value:{sign}{spec}}"


def with_unit(value: float | None, unit: str, *, signed: bool = False) -> str:
    """`181.5 ms`, `11,010 tok/s`, `3.18 s`; a dash (no unit) when there is no value."""
    return DASH if value is None else f"{number(value, signed=signed)} {unit}"


def percent(fraction: float | None, *, signed: bool = False) -> str:
    """A 0-1 share as a percentage: `1.1%`, `85.0%`, `0%`, `<0.1%`."""
    if fraction is None:
        return DASH
    pct = fraction * 100
    if pct == 0:
        return "0%"
    if abs(pct) < 0.1:
        return ("-" if pct < 0 else "") + "<0.1%"
    return f"{pct:{'+' if signed else ''},.1f}%"


def seconds(value: float | None) -> str:
    """A duration: `850 ms` below a second, `3.18 s`, `2 min 05 s` from two minutes."""
    if value is None:
        return DASH
    if abs(value) < 1:
        return with_unit(value * 1000, "ms")
    if abs(value) < 120:
        return with_unit(value, "s")
    minutes, secs = divmod(round(value), 60)
    return f"{minutes:,} min {secs:02d} s"


def usd(value: float | None) -> str:
    """Dollars: `$0.0123` (small amounts keep three significant digits), `$1,234.50`."""
    if value is None:
        return DASH
    if value == 0 or abs(value) >= 1:
        return f"${value:,.2f}"
    return "$" + number(value)


def nice_step(span: float, ticks: int = 5, minimum: float = 0.0) -> float:
    """A round tick step (1, 2 or 5 × 10^k) giving about `ticks` intervals over `span`, at least
    `minimum` (1 for counts: no tick between two whole numbers)."""
    if span <= 0 or not math.isfinite(span):
        return max(1.0, minimum)
    if span / ticks < minimum:
        return minimum
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * power * (1 + 1e-9):
            return mult * power
    return 10 * power


def nice_ticks(lo: float, hi: float, ticks: int = 5, minimum: float = 0.0) -> list[float]:
    """Round tick values covering [lo, hi]: multiples of `nice_step`, the first at or below lo, the last at
    or above hi (so an axis drawn to the last tick holds every value)."""
    if hi <= lo:
        hi = lo + 1
    step = nice_step(hi - lo, ticks, minimum)
    start = math.floor(lo / step + 1e-9) * step
    values = []
    k = 0
    while True:
        v = start + k * step
        values.append(round(v, 12))
        if v >= hi - step * 1e-9 or k > 4 * ticks:
            return values
        k += 1


def tick_label(value: float, step: float) -> str:
    """A tick as text: as many decimals as the step needs, thousands separated (`2,500`, `0.2`, `0.05`)."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    return f"{value:,.{decimals}f}"
