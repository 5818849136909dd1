"""The HTML report (`bench --html`) as a person sees it, rendered by headless Chromium: no e-notation
anywhere, figures with units and thousands separators, round axis ticks, and no label drawn over another
(issue 19: `output_throughput 1.101e+04`, ticks `2.75e+03`, the ITL histogram's y labels `86e+04`,
`39e+04` printed over each other)."""

from __future__ import annotations

import json
import math
import random
import re
from itertools import pairwise
from pathlib import Path

from typer.testing import CliRunner

from llmops.bench.report_html import curve_svg, histogram_svg
from llmops.cli import app

E_NOTATION = re.compile(r"\d(?:\.\d+)?[eE][+-]?\d")

# Every <text> in every plot: its box on the page, its class and its text.
BOXES = """
return [...document.querySelectorAll('svg')].map(svg => [...svg.querySelectorAll('text')].map(t => {
  const r = t.getBoundingClientRect();
  return {cls: t.getAttribute('class') || '', text: t.textContent, l: r.left, t: r.top, r: r.right, b: r.bottom};
}));
"""


def _overlap(a: dict, b: dict) -> bool:
    return a["l"] < b["r"] and b["l"] < a["r"] and a["t"] < b["b"] and b["t"] < a["b"]


def _look(driver, page: Path) -> tuple[str, list[list[dict]]]:
    driver.get(page.as_uri())
    text = driver.execute_script(
        "return document.body.innerText + '\\n' + "
        "[...document.querySelectorAll('svg text')].map(t => t.textContent).join('\\n')"
    )
    return text, driver.execute_script(BOXES)


def _check_plots(plots: list[list[dict]]) -> None:
    assert plots
    for texts in plots:
        ticks = [t for t in texts if t["cls"] in ("xtick", "ytick")]
        assert len([t for t in ticks if t["cls"] == "ytick"]) >= 2
        for i, a in enumerate(texts):
            assert a["r"] > a["l"] and a["b"] > a["t"], a  # drawn, with a size
            for b in texts[i + 1 :]:
                if {a["cls"], b["cls"]} <= {"xtick", "ytick", ""}:  # marks may cross bars and lines only
                    assert not _overlap(a, b), (a, b)
        for cls in ("xtick", "ytick"):
            values = [float(t["text"].replace(",", "")) for t in ticks if t["cls"] == cls]
            steps = {round(b - a, 9) for a, b in pairwise(values)}
            assert len(steps) == 1, values  # evenly spaced
            step = steps.pop()
            mantissa = step / 10 ** math.floor(math.log10(step))
            assert round(mantissa, 6) in (1, 2, 5), values  # 1, 2 or 5 x 10^k


def test_the_report_of_a_real_run_reads_cleanly_in_chromium(fake_server, browser, tmp_path: Path) -> None:
    base = fake_server(ttft_ms=5, gap_ms=1, tokens=16)
    html = tmp_path / "report.html"
    res = CliRunner().invoke(
        app,
        ["bench", "--target", base, "--num-prompts", "12", "--sweep", "--sweep-values", "1,4", "--html", str(html),
         "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    text, plots = _look(browser, html)
    assert not E_NOTATION.search(text), E_NOTATION.findall(text)
    assert re.search(r"duration\s+[\d.,]+ (ms|s)\b", text), text
    assert re.search(r"output throughput\s+[\d.,]+ tok/s", text), text
    assert re.search(r"error rate\s+0%", text), text
    assert f"{doc['completed']:,}" in text
    _check_plots(plots)
    browser.save_screenshot(str(tmp_path / "report.png"))


def test_large_figures_get_round_ticks_and_separate_labels(browser, tmp_path: Path) -> None:
    """The sizes from the issue: an ITL histogram with tens of thousands of gaps in a bin, a sweep at
    11,000 tokens/s."""
    rng = random.Random(7)
    gaps = [rng.lognormvariate(1.0, 0.35) for _ in range(200_000)] + [rng.uniform(20, 90) for _ in range(300)]
    sweep = [(1_100.0, 180.5, 240.1), (5_512.3, 310.2, 900.7), (11_010.3, 2_750.4, 9_870.2)]
    page = tmp_path / "plots.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><style>body{font-family:system-ui,sans-serif}"
        "</style></head><body>"
        + histogram_svg(gaps, "ITL distribution (ms)", "ms", "gaps between chunks")
        + curve_svg(sweep, "Sweep: TTFT against output throughput", "output tokens/s", "TTFT ms")
        + "</body></html>"
    )
    text, plots = _look(browser, page)
    assert not E_NOTATION.search(text), E_NOTATION.findall(text)
    yticks = [t["text"] for t in plots[0] if t["cls"] == "ytick"]
    assert any("," in t for t in yticks) and yticks[0] == "0", yticks  # 20,000 / 40,000 ...
    assert "10,000" in [t["text"] for t in plots[1] if t["cls"] == "xtick"]
    _check_plots(plots)
    browser.save_screenshot(str(tmp_path / "plots.png"))
