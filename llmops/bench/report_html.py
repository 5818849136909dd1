"""A self-contained HTML report: figures, gates, and inline SVG plots (no scripts, no CDN)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from llmops.bench.metrics import LATENCIES, histogram, latency_values
from llmops.humanize import DASH, nice_step, nice_ticks, number, percent, seconds, tick_label, usd, with_unit

W, H, PAD = 520, 240, 44
FONT_PX = 10
CHAR_PX = 6.2  # a digit or comma of the 10 px sans-serif label font, generously


class _Frame:
    """A plot's scales: round ticks on both axes (1, 2 or 5 × 10^k), the left margin as wide as the
    widest y label, so no label runs into another or into the axis title."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, *, y_counts: bool = False) -> None:
        least = 1.0 if y_counts else 0.0  # counts: whole-number ticks only
        self.xticks, self.yticks = nice_ticks(x0, x1), nice_ticks(y0, y1, minimum=least)
        self.xstep, self.ystep = nice_step(x1 - x0), nice_step(y1 - y0, minimum=least)
        self.ylabels = [tick_label(v, self.ystep) for v in self.yticks]
        self.left = 24 + max(len(t) for t in self.ylabels) * CHAR_PX
        self.lo_x, self.hi_x = self.xticks[0], self.xticks[-1]
        self.lo_y, self.hi_y = self.yticks[0], self.yticks[-1]

    def x(self, v: float) -> float:
        return self.left + (v - self.lo_x) / (self.hi_x - self.lo_x) * (W - PAD - self.left)

    def y(self, v: float) -> float:
        return H - PAD - (v - self.lo_y) / (self.hi_y - self.lo_y) * (H - 2 * PAD)

    def axes(self, xlabel: str, ylabel: str) -> str:
        parts = [
            f'<line x1="{self.left:.0f}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#333"/>',
            f'<line x1="{self.left:.0f}" y1="{PAD}" x2="{self.left:.0f}" y2="{H - PAD}" stroke="#333"/>',
        ]
        for v in self.xticks:
            parts.append(
                f'<text class="xtick" x="{self.x(v):.1f}" y="{H - PAD + 14}" font-size="{FONT_PX}" '
                f'text-anchor="middle">{tick_label(v, self.xstep)}</text>'
            )
        for v, label in zip(self.yticks, self.ylabels, strict=True):
            parts.append(
                f'<line x1="{self.left - 3:.0f}" y1="{self.y(v):.1f}" x2="{self.left:.0f}" y2="{self.y(v):.1f}" '
                f'stroke="#333"/><text class="ytick" x="{self.left - 5:.0f}" y="{self.y(v) + 3:.1f}" '
                f'font-size="{FONT_PX}" text-anchor="end">{label}</text>'
            )
        parts.append(
            f'<text x="{(self.left + W - PAD) / 2:.0f}" y="{H - 8}" font-size="11" '
            f'text-anchor="middle">{escape(xlabel)}</text>'
            f'<text x="12" y="{H / 2}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 12 {H / 2})">{escape(ylabel)}</text>'
        )
        return "".join(parts)


def _svg(title: str, body: str) -> str:
    return (
        f'<figure><figcaption>{escape(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{W}" height="{H}">{body}</svg></figure>'
    )


def histogram_svg(values: Sequence[float], title: str, unit: str = "ms", counted: str = "requests") -> str:
    """Bars of a latency distribution (how many `counted` fell in each bin), median and p99 marked."""
    bins = histogram(values, 40)
    if not bins:
        return f"<p>{escape(title)}: no data</p>"
    lo, hi = bins[0][0], max(bins[-1][1], bins[0][0] + 1e-9)
    if hi - lo < 1e-9:  # every value the same: one bar in a unit-wide window
        lo, hi = lo - 0.5, lo + 0.5
    f = _Frame(lo, hi, 0, max(c for _, _, c in bins), y_counts=True)
    bars = []
    for b_lo, b_hi, c in bins:
        x, x_end, top = f.x(b_lo), f.x(b_hi if b_hi > b_lo else b_lo + (hi - lo) / 40), f.y(c)
        bars.append(
            f'<rect x="{x:.1f}" y="{top:.1f}" width="{max(x_end - x - 1, 1):.1f}" '
            f'height="{H - PAD - top:.1f}" fill="#4a7bd0"/>'
        )
    v = sorted(values)
    marks = []
    for row, (q, color) in enumerate(((50, "#2a9d3f"), (99, "#d04a4a"))):
        val = v[min(len(v) - 1, int(len(v) * q / 100))]
        x = f.x(val)
        anchor = "end" if x > W - PAD - 90 else "start"
        dx = -3 if anchor == "end" else 3
        marks.append(
            f'<line x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{H - PAD}" stroke="{color}" '
            f'stroke-dasharray="4 3"/><text class="mark" x="{x + dx:.1f}" y="{PAD + 10 + 12 * row}" '
            f'font-size="{FONT_PX}" fill="{color}" text-anchor="{anchor}">p{q} {with_unit(val, unit)}</text>'
        )
    return _svg(title, f"{f.axes(unit, counted)}{''.join(bars)}{''.join(marks)}")


def curve_svg(points: Sequence[tuple[float, float, float]], title: str, xlabel: str, ylabel: str) -> str:
    """Throughput (x) against two latency lines (median and p99) for a sweep."""
    pts = [p for p in points if None not in p]
    if not pts:
        return f"<p>{escape(title)}: no data</p>"
    f = _Frame(0, max(p[0] for p in pts) or 1, 0, max(max(p[1], p[2]) for p in pts) or 1)
    lines = []
    for idx, color, name in ((1, "#2a9d3f", "median"), (2, "#d04a4a", "p99")):
        xy = " ".join(f"{f.x(p[0]):.1f},{f.y(p[idx]):.1f}" for p in pts)
        lines.append(f'<polyline points="{xy}" fill="none" stroke="{color}" stroke-width="2"/>')
        lines += [f'<circle cx="{f.x(p[0]):.1f}" cy="{f.y(p[idx]):.1f}" r="3" fill="{color}"/>' for p in pts]
        lines.append(
            f'<text x="{W - PAD - 40}" y="{PAD + 12 * idx}" font-size="{FONT_PX}" fill="{color}">{name}</text>'
        )
    return _svg(title, f"{f.axes(xlabel, ylabel)}{''.join(lines)}")


def _table(rows: Sequence[Sequence[object]], head: Sequence[str]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _fmt(v: object) -> str:
    if v is None:
        return DASH
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    return number(v)


# The figures table: (field, label, formatter), each figure with its unit.
FIGURES: list[tuple[str, str, Callable[[float | None], str]]] = [
    ("completed", "completed", number),
    ("failed", "failed", number),
    ("error_rate", "error rate", percent),
    ("duration", "duration", seconds),
    ("request_throughput", "request throughput", lambda v: with_unit(v, "req/s")),
    ("request_goodput", "goodput (within SLOs)", lambda v: with_unit(v, "req/s")),
    ("output_throughput", "output throughput", lambda v: with_unit(v, "tok/s")),
    ("total_token_throughput", "total token throughput", lambda v: with_unit(v, "tok/s")),
    ("mean_input_tokens", "mean input tokens", number),
    ("mean_output_tokens", "mean output tokens", number),
    ("cost_per_1k_requests", "cost per 1K requests", usd),
]


def render(result, points) -> str:
    """The report for a BenchResult and its measured points (samples of the last point are plotted)."""
    r = result
    figs = [(label, fmt(getattr(r, k))) for k, label, fmt in FIGURES]
    lat_rows = [
        [m, *(getattr(r, f"{s}_{m}_ms") for s in ("mean", "median", "p90", "p95", "p99", "max"))]
        for m in LATENCIES
    ]
    checks = [
        [c.name, c.op, c.limit, c.actual, "ok" if c.passed else "BROKEN"]
        for c in [*r.slo_checks, *r.baseline_checks]
    ]
    samples = points[-1].samples if points else []
    plots = [
        histogram_svg(latency_values(samples, m), f"{m.upper()} distribution (ms)", "ms", counted)
        for m, counted in (("ttft", "requests"), ("itl", "gaps between chunks"), ("e2el", "requests"))
    ]
    if r.sweep:
        pts = [(p.output_throughput, p.median_ttft_ms, p.p99_ttft_ms) for p in r.sweep]
        plots.insert(0, curve_svg(pts, "Sweep: TTFT against output throughput", "output tokens/s", "TTFT ms"))
        pts = [(p.output_throughput, p.median_tpot_ms, p.p99_tpot_ms) for p in r.sweep]
        plots.insert(1, curve_svg(pts, "Sweep: TPOT against output throughput", "output tokens/s", "TPOT ms"))
    sweep_tbl = ""
    if r.sweep:
        sweep_tbl = "<h2>Sweep</h2>" + _table(
            [
                [
                    p.load,
                    p.completed,
                    p.failed,
                    p.request_throughput,
                    p.output_throughput,
                    p.median_ttft_ms,
                    p.p99_ttft_ms,
                    p.median_tpot_ms,
                ]
                for p in r.sweep
            ],
            [
                "load",
                "completed",
                "failed",
                "req/s",
                "out tok/s",
                "median TTFT ms",
                "p99 TTFT ms",
                "median TPOT ms",
            ],
        )
    defs = "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in r.definitions.items())
    status = "PASS" if r.passed else "FAIL"
    title = escape(r.config.model)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>llmops bench: {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;max-width:1100px}}table{{border-collapse:collapse;
margin:8px 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}th{{background:#f3f3f3}}
figure{{display:inline-block;margin:8px}}.PASS{{color:#2a9d3f}}.FAIL{{color:#d04a4a}}</style></head><body>
<h1>llmops bench: {escape(r.config.model)} <span class="{status}">{status}</span></h1>
<p>{escape(r.config.endpoint)} at {escape(r.config.target)}; {escape(r.load)}; {escape(r.verdict)}</p>
<p>output tokens from: {escape(r.output_tokens_from)}; input tokens from: {escape(r.input_tokens_from)};
started {escape(r.environment.started_at)}; llmops {escape(r.environment.llmops)}</p>
<h2>Figures</h2>{_table(figs, ["figure", "value"])}
<h2>Latency (ms)</h2>{_table(lat_rows, ["metric", "mean", "median", "p90", "p95", "p99", "max"])}
<h2>Gates</h2>{_table(checks, ["check", "op", "limit", "actual", "result"]) if checks else "<p>none</p>"}
{sweep_tbl}<h2>Plots</h2>{"".join(plots)}
<h2>Definitions</h2><ul>{defs}</ul></body></html>
"""
