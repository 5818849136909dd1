"""A self-contained HTML report: figures, gates, and inline SVG plots (no scripts, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from llmops.bench.metrics import LATENCIES, histogram, latency_values

W, H, PAD = 520, 240, 44


def _axis(x0: float, x1: float, y0: float, y1: float, xlabel: str, ylabel: str) -> str:
    ticks = []
    for i in range(5):
        fx, fy = i / 4, i / 4
        x = PAD + fx * (W - 2 * PAD)
        y = H - PAD - fy * (H - 2 * PAD)
        ticks.append(
            f'<text x="{x:.0f}" y="{H - PAD + 16}" font-size="10" text-anchor="middle">'
            f"{x0 + fx * (x1 - x0):.3g}</text>"
        )
        ticks.append(
            f'<text x="{PAD - 4}" y="{y + 3:.0f}" font-size="10" text-anchor="end">'
            f"{y0 + fy * (y1 - y0):.3g}</text>"
        )
    return (
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#333"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="#333"/>'
        + "".join(ticks)
        + f'<text x="{W / 2}" y="{H - 6}" font-size="11" text-anchor="middle">{escape(xlabel)}</text>'
        f'<text x="12" y="{H / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {H / 2})">{escape(ylabel)}</text>'
    )


def histogram_svg(values: Sequence[float], title: str, unit: str = "ms") -> str:
    """Bars of a latency distribution, with the median and p99 marked."""
    bins = histogram(values, 40)
    if not bins:
        return f"<p>{escape(title)}: no data</p>"
    x0, x1 = bins[0][0], bins[-1][1] if bins[-1][1] > bins[0][0] else bins[0][0] + 1
    top = max(c for _, _, c in bins)
    sx = (W - 2 * PAD) / (x1 - x0)
    bars = []
    for lo, hi, c in bins:
        h = (H - 2 * PAD) * c / top
        bars.append(
            f'<rect x="{PAD + (lo - x0) * sx:.1f}" y="{H - PAD - h:.1f}" '
            f'width="{max((hi - lo) * sx - 1, 1):.1f}" height="{h:.1f}" fill="#4a7bd0"/>'
        )
    v = sorted(values)
    marks = []
    for q, color in ((50, "#2a9d3f"), (99, "#d04a4a")):
        val = v[min(len(v) - 1, int(len(v) * q / 100))]
        x = PAD + (val - x0) * sx
        marks.append(
            f'<line x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{H - PAD}" stroke="{color}" '
            f'stroke-dasharray="4 3"/><text x="{x + 3:.1f}" y="{PAD + 10}" font-size="10" '
            f'fill="{color}">p{q} {val:.3g}</text>'
        )
    return (
        f'<figure><figcaption>{escape(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{W}" height="{H}">{_axis(x0, x1, 0, top, unit, "requests")}{"".join(bars)}{"".join(marks)}'
        "</svg></figure>"
    )


def curve_svg(points: Sequence[tuple[float, float, float]], title: str, xlabel: str, ylabel: str) -> str:
    """Throughput (x) against two latency lines (median and p99) for a sweep."""
    pts = [p for p in points if None not in p]
    if not pts:
        return f"<p>{escape(title)}: no data</p>"
    x1 = max(p[0] for p in pts) or 1
    y1 = max(max(p[1], p[2]) for p in pts) or 1
    sx, sy = (W - 2 * PAD) / x1, (H - 2 * PAD) / y1
    lines = []
    for idx, color, name in ((1, "#2a9d3f", "median"), (2, "#d04a4a", "p99")):
        xy = " ".join(f"{PAD + p[0] * sx:.1f},{H - PAD - p[idx] * sy:.1f}" for p in pts)
        lines.append(f'<polyline points="{xy}" fill="none" stroke="{color}" stroke-width="2"/>')
        lines += [
            f'<circle cx="{PAD + p[0] * sx:.1f}" cy="{H - PAD - p[idx] * sy:.1f}" r="3" fill="{color}"/>'
            for p in pts
        ]
        lines.append(
            f'<text x="{W - PAD - 40}" y="{PAD + 12 * idx}" font-size="10" fill="{color}">{name}</text>'
        )
    return (
        f'<figure><figcaption>{escape(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{W}" height="{H}">{_axis(0, x1, 0, y1, xlabel, ylabel)}{"".join(lines)}</svg></figure>'
    )


def _table(rows: Sequence[Sequence[object]], head: Sequence[str]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def render(result, points) -> str:
    """The report for a BenchResult and its measured points (samples of the last point are plotted)."""
    r = result
    figs = [
        (k, getattr(r, k))
        for k in (
            "completed",
            "failed",
            "error_rate",
            "duration",
            "request_throughput",
            "request_goodput",
            "output_throughput",
            "total_token_throughput",
            "mean_input_tokens",
            "mean_output_tokens",
            "cost_per_1k_requests",
        )
    ]
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
        histogram_svg(latency_values(samples, m), f"{m.upper()} distribution (ms)")
        for m in ("ttft", "itl", "e2el")
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
