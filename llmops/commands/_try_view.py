"""How `llmops try` looks at a terminal: the answer on stdout as it streams, everything about it on stderr."""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

import typer
from rich.markup import escape
from rich.text import Text

from llmops.errors import OperationFailed
from llmops.sampling.confidence import HIGH, LOW, band
from llmops.sampling.confidence import token_probability as prob
from llmops.tryout import Answer, TokenLogprob, TryPlan, TryResult
from llmops.ui import RichProgress, err, out, table

BANDS = f"above {HIGH} automatic, {LOW}-{HIGH} check, below {LOW} human review"
_STYLE = {"automatic": "green", "check": "yellow", "human review": "bold red"}


class TerminalView:
    """A TryObserver: streams text (coloured by probability with --logprobs), then one status line."""

    def __init__(self, plan: TryPlan) -> None:
        self.plan = plan
        self.compare = plan.compare_param is not None
        self.progress: RichProgress | None = None

    def __enter__(self) -> TerminalView:
        for variant in self.plan.variants:
            for note in variant.notes:
                err.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
        if self.compare:
            self.progress = RichProgress()
            total = len(self.plan.variants) * self.plan.answers_per_variant
            self.progress.start(total, f"{self.plan.compare_param}: {len(self.plan.variants)} settings")
        return self

    def answer_start(self, run: int, answer: int, total: int) -> None:
        if not self.compare and total > 1:
            err.print(f"[dim]── answer {answer + 1} of {total} ──[/dim]", highlight=False)

    def piece(self, text: str, tokens: list[TokenLogprob]) -> None:
        if self.compare:
            return
        if tokens and self.plan.logprobs is not None and "".join(t.token for t in tokens) == text:
            out.print(coloured(tokens), end="", soft_wrap=True)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    def answer_end(self, answer: Answer) -> None:
        if self.progress is not None:
            self.progress.update(1)
            return
        if answer.text and not answer.text.endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()
        err.print(status_line(answer, self.plan), style="dim", highlight=False)
        if self.plan.logprobs is not None:
            print_logprobs(answer, self.plan.logprobs)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.finish()


def coloured(tokens: list[TokenLogprob]) -> Text:
    text = Text()
    for t in tokens:
        text.append(t.token, style=_STYLE[band(prob(t.logprob))])
    return text


def status_line(a: Answer, plan: TryPlan) -> str:
    parts = []
    if a.cancelled:
        parts.append("cancelled")
    if a.ttft_s is not None:
        parts.append(f"TTFT {a.ttft_s * 1000:.0f} ms")
    if a.tokens_per_s is not None:
        parts.append(f"{a.tokens_per_s:.1f} tok/s")
    if a.finish_reason:
        parts.append(f"finish: {finish_text(a, plan)}")
    n_in = "?" if a.input_tokens is None else str(a.input_tokens)
    n_out = "?" if a.output_tokens is None else str(a.output_tokens)
    src = "" if a.output_tokens_from == "usage" else f" (counted from {a.output_tokens_from})"
    parts.append(f"tokens in {n_in} / out {n_out}{src}")
    if a.cost_usd is not None:
        parts.append(f"${a.cost_usd:.6f}")
    if a.duration_s is not None:
        parts.append(f"{a.duration_s:.2f} s")
    g = a.gateway
    if g.get("route"):
        parts.append(f"route {g['route']}")
    if g.get("deployment"):
        parts.append(f"deployment {g['deployment']}")
    if g.get("cache"):
        parts.append(f"cache {g['cache']}")
    return " · ".join(parts)


def finish_text(a: Answer, plan: TryPlan) -> str:
    if a.finish_reason == "length":
        mt = plan.variants[0].values.get("max_tokens")
        return f"length (hit max_tokens {mt.value})" if mt else "length (hit max_tokens)"
    if a.finish_reason == "stop_sequence":
        return f"stop sequence {a.stop_sequence!r}" if a.stop_sequence else "stop sequence"
    if a.finish_reason == "stop":
        return "stop (end of answer)"
    return str(a.finish_reason)


def print_logprobs(a: Answer, k: int) -> None:
    if not a.logprobs:
        if a.ok:
            err.print(
                "[yellow]no log-probabilities:[/yellow] the endpoint returned none for this answer "
                f"(asked with logprobs=true, top_logprobs={k})",
                highlight=False,
            )
        return
    conf = a.confidence
    assert conf is not None
    b = band(conf)
    err.print(
        f"confidence [{_STYLE[b]}]{conf:.3f} → {b}[/{_STYLE[b]}] "
        f"(exp of the mean log-probability of {len(a.logprobs)} tokens; {BANDS})",
        highlight=False,
    )
    if k > 0:
        rows = []
        for t in a.logprobs:
            alts = ", ".join(f"{tok!r} {prob(lp):.2f}" for tok, lp in t.top if tok != t.token)
            rows.append([repr(t.token), f"{prob(t.logprob):.3f}", alts])
        err.print(table(f"tokens and the top {k} alternatives", ["token", "p", "alternatives"], rows))


def print_dry_run(plan: TryPlan, *, as_json: bool) -> None:
    from llmops.settings import dry_run_document
    from llmops.tryout import request_body
    from llmops.ui import print_json

    model = plan.model or "(asked from the target)"
    bodies = [
        {"label": v.label, "request": request_body(plan, v, model), "not_sent": v.notes}
        for v in plan.variants
    ]
    if as_json:
        doc = dry_run_document(
            "try", plan.settings, dialect=plan.dialect.name, serve_first=plan.needs_server, requests=bodies
        )
        return print_json(doc)
    where = f"serve profile {plan.model_profile.profile.name} first" if plan.needs_server else plan.target
    out.print(f"try {model} via {plan.dialect.label} ({where})", highlight=False)
    out.print(
        table(
            "settings",
            ["setting", "value", "from"],
            (row for row in plan.settings.rows() if row[1] != ""),
        )
    )
    for b in bodies:
        out.print(f"{b['label']}:", highlight=False)
        out.print(json.dumps(b["request"], indent=2), markup=False, highlight=False)
        for note in b["not_sent"]:
            err.print(f"note: {note}", markup=False, highlight=False)


def print_result(plan: TryPlan, result: TryResult) -> None:
    if plan.compare_param is not None:
        print_compare(plan, result)
    else:
        run = result.runs[0]
        if len(run.answers) > 1:
            err.print(diversity_line(run), highlight=False)
    for line in seed_lines(plan, result):
        err.print(line, highlight=False)


def diversity_line(run: Any) -> str:
    d = run.diversity
    ratio = "-" if d.distinct_word_ratio is None else f"{d.distinct_word_ratio:.2f}"
    return f"{d.answers} answers: {d.distinct_answers} distinct; distinct-word ratio {ratio}"


def print_compare(plan: TryPlan, result: TryResult) -> None:
    runs = result.runs
    count = max((len(r.answers) for r in runs), default=0)
    rows: list[list[Any]] = []
    for i in range(count):
        row: list[Any] = [f"answer {i + 1}"]
        for r in runs:
            a = r.answers[i] if i < len(r.answers) else None
            row.append("" if a is None else answer_cell(a))
        rows.append(row)

    def med(values: list[float]) -> str:
        return "-" if not values else f"{statistics.median(values):.0f}"

    summary = [
        ["distinct answers", *(f"{r.diversity.distinct_answers} of {r.diversity.answers}" for r in runs)],
        [
            "distinct-word ratio",
            *(
                "-" if r.diversity.distinct_word_ratio is None else f"{r.diversity.distinct_word_ratio:.2f}"
                for r in runs
            ),
        ],
        [
            "median TTFT (ms)",
            *(med([a.ttft_s * 1000 for a in r.answers if a.ttft_s is not None]) for r in runs),
        ],
        [
            "median tok/s",
            *(med([a.tokens_per_s for a in r.answers if a.tokens_per_s is not None]) for r in runs),
        ],
    ]
    t = table(
        f"{plan.compare_param}: the same prompt, side by side",
        ["", *(r.variant.label for r in runs)],
        rows + summary,
    )
    out.print(t)
    out.print(
        "distinct-word ratio: distinct words / all words over the answers of a column (1.0: no word repeats).",
        style="dim",
        highlight=False,
    )


def answer_cell(a: Answer) -> str:
    if a.error:
        return f"[{a.error}] {a.detail or ''}".strip()
    text = a.text.strip()
    return text + (" [cancelled]" if a.cancelled else "")


def seed_lines(plan: TryPlan, result: TryResult) -> list[str]:
    """With --seed at temperature 0: were repeated answers identical, and which system_fingerprint."""
    lines = []
    for run in result.runs:
        values = run.variant.values
        seed, temp = values.get("seed"), values.get("temperature")
        if seed is None or temp is None or temp.value != 0 or len(run.answers) < 2:
            continue
        d = run.diversity
        verdict = (
            f"identical ({d.answers} of {d.answers})"
            if d.identical
            else f"NOT identical ({d.distinct_answers} different texts in {d.answers})"
        )
        fps = run.fingerprints()
        fp = f"system_fingerprint {', '.join(fps)}" if fps else "the server sent no system_fingerprint"
        label = f"{run.variant.label}: " if plan.compare_param else ""
        lines.append(f"{label}seed {seed.value} at temperature 0: repeated answers {verdict}; {fp}")
    return lines


def result_json(plan: TryPlan, result: TryResult) -> dict[str, Any]:
    from llmops.tryout.run import result_document

    return result_document(plan, result)


def finish(result: TryResult) -> None:
    """Exit 130 after Ctrl-C (the partial answer was shown), 1 when an answer failed."""
    if result.interrupted:
        err.print("interrupted: the request was cancelled; the partial answer is above", highlight=False)
        raise typer.Exit(130)
    failed = [a for r in result.runs for a in r.answers if a.error]
    if failed:
        a = failed[0]
        more = (
            f" ({len(failed)} of {sum(len(r.answers) for r in result.runs)} answers failed)"
            if len(failed) > 1
            else ""
        )
        raise OperationFailed(f"{a.error}: {error_text(a.detail)}{more}", hint=error_hint(a))


def error_text(detail: str | None) -> str:
    """The message inside an API error body, else the body itself."""
    if not detail:
        return "no detail"
    try:
        doc = json.loads(detail)
    except ValueError:
        return detail
    if isinstance(doc, dict):
        e = doc.get("error", doc)
        if isinstance(e, dict) and e.get("message"):
            return str(e["message"])
        if doc.get("detail"):
            return str(doc["detail"])
    return detail


def error_hint(a: Answer) -> str | None:
    if a.error == "connect":
        return "is the server running? check --target"
    if a.error == "timeout":
        return "raise --timeout, or check the server's load"
    if a.error in ("http_401", "http_403"):
        return "check the API key (for a gateway: $LLMOPS_TRY_API_KEY)"
    if a.error == "http_404":
        return "check the model or route name (`llmops profiles list`)"
    return None
