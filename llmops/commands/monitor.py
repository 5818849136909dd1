"""`llmops monitor`: alert rules, a Grafana dashboard, a live view and a diagnosis of running endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmops.context import state
from llmops.options import ForceOpt, JsonOpt, ModelNameOpt, OutputOpt

if TYPE_CHECKING:
    from llmops.monitor.diagnose import Diagnosis
    from llmops.monitor.top import EndpointView

Opt = typer.Option
app = typer.Typer(
    help="Alert rules, dashboards, a live view and a diagnosis of running endpoints.\n\n"
    "Example: llmops monitor rules -o rules.yml && promtool check rules rules.yml",
    no_args_is_help=True,
)
VllmVersionOpt = Annotated[
    str | None, Opt("--vllm-version", help="vLLM version whose metric names to use (default: the newest).")
]


def _write_or_print(text: str, output: Path | None, force: bool, json: bool, doc: dict) -> None:
    from llmops.ui import hint, out, print_json

    if output is not None:
        from llmops.output import write_output_file

        write_output_file(output, text, force=force)
        hint(f"wrote {output}")
    if json:
        print_json({"output": str(output) if output else None, **doc})
    elif output is None:
        out.print(text, markup=False, highlight=False, end="")


@app.command("rules")
def rules(
    ctx: typer.Context,
    output: OutputOpt = None,
    k8s: Annotated[bool, Opt("--k8s", help="Write a PrometheusRule (monitoring.coreos.com/v1).")] = False,
    namespace: Annotated[
        str | None, Opt("--namespace", help="metadata.namespace of the PrometheusRule.")
    ] = None,
    vllm_version: VllmVersionOpt = None,
    force: ForceOpt = False,
    json: JsonOpt = False,
) -> None:
    """Prometheus alerting and recording rules for the gateway, vLLM, llama.cpp and bench's SLOs.

    Thresholds come from llmops.yaml (monitor:, and bench.slos for the burn-rate alerts).
    Example: llmops monitor rules --k8s --namespace llm -o llmops-rules.yaml
    """
    from llmops.monitor.config import resolve
    from llmops.monitor.rules import render
    from llmops.ui import warn

    st = state(ctx, json=json)
    if output is not None:
        from llmops.output import check_output_file

        check_output_file(output, force=force)
    rs, text = render(resolve(st.workspace(), vllm_version=vllm_version), k8s=k8s, namespace=namespace)
    for note in rs.notes:
        warn(note)
    summary = {"alerts": rs.alerts(), "recording_rules": len(rs.recorded()), "notes": rs.notes}
    _write_or_print(text, output, force, st.json, summary)


@app.command("dashboard")
def dashboard(
    ctx: typer.Context,
    output: OutputOpt = None,
    vllm_version: VllmVersionOpt = None,
    force: ForceOpt = False,
    json: JsonOpt = False,
) -> None:
    """A Grafana dashboard (JSON to import) for the gateway, vLLM and llama.cpp.

    Example: llmops monitor dashboard -o llmops-dashboard.json
    """
    import json as _json

    from llmops.monitor.dashboard import build, checked

    st = state(ctx, json=json)
    if output is not None:
        from llmops.output import check_output_file

        check_output_file(output, force=force)
    version = vllm_version or st.workspace().monitor.vllm_version
    dash = checked(build(version), version)
    text = _json.dumps(dash, indent=2) + "\n"
    if st.json and output is None:
        from llmops.ui import print_json

        print_json(dash)
        return
    _write_or_print(
        text, output, force, st.json, {"panels": sum(1 for p in dash["panels"] if p["type"] != "row")}
    )


@app.command("top")
def top(
    ctx: typer.Context,
    urls: Annotated[
        list[str] | None,
        typer.Argument(help="Endpoints (gateway, vLLM, llama.cpp), e.g. http://127.0.0.1:4000."),
    ] = None,
    once: Annotated[
        bool, Opt("--once", help="One sample (two scrapes an interval apart), then exit.")
    ] = False,
    interval: Annotated[float, Opt("--interval", min=0.2, help="Seconds between scrapes.")] = 1.0,
    json: JsonOpt = False,
) -> None:
    """A live view of running endpoints from their /metrics: queue, KV cache, tokens/s, TTFT/ITL/E2E.

    Example: llmops monitor top http://127.0.0.1:4000 http://gpu-1:8000 --once --json
    """
    from llmops.monitor.top import Watcher, sample
    from llmops.ui import interactive, print_json

    st = state(ctx, json=json)
    targets = urls or _default_targets(st)
    if once or st.json or not interactive():
        views = sample(targets, interval)
        if st.json:
            print_json({"interval_s": interval, "endpoints": views})
        else:
            from llmops.ui import out

            for r in render_views(views):
                out.print(r)
        return
    import time

    from rich.live import Live

    from llmops.ui import err

    w = Watcher(targets)
    try:
        w.step()
        with Live(console=err, auto_refresh=False, transient=False) as live:
            while True:
                time.sleep(interval)
                from rich.console import Group

                live.update(Group(*render_views(w.step())), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        w.close()


@app.command("diagnose")
def diagnose(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The endpoint, e.g. http://127.0.0.1:8000/v1.")],
    model: ModelNameOpt = None,
    timeout: Annotated[float, Opt("--timeout", min=0.5, help="Seconds to wait for the test request.")] = 30.0,
    api_key_env: Annotated[
        str | None, Opt("--api-key-env", help="Name of the variable that holds the endpoint's key.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Check a running endpoint and name the cause of trouble, with the fix. Exit 1 when something is wrong.

    Example: llmops monitor diagnose http://127.0.0.1:8000/v1
    """
    run_diagnosis(ctx, url, model, timeout, api_key_env, json)


def run_diagnosis(
    ctx: typer.Context, url: str, model: str | None, timeout: float, api_key_env: str | None, json: bool
) -> None:
    """Shared by `monitor diagnose` and `doctor --endpoint`."""
    import os

    from llmops.monitor.config import resolve
    from llmops.monitor.diagnose import diagnose as run

    st = state(ctx, json=json)
    key = os.environ.get(api_key_env) if api_key_env else None
    d = run(url, resolve(st.workspace()), model=model, timeout=timeout, api_key=key, catalog=st.catalog())
    show_diagnosis(d, st.json)


def run_log_diagnosis(ctx: typer.Context, log: Path, engine: str | None, json: bool) -> None:
    from llmops.monitor.logs import diagnose_log

    st = state(ctx, json=json)
    show_diagnosis(diagnose_log(log, engine), st.json)


def show_diagnosis(d: Diagnosis, json: bool) -> None:
    from rich.markup import escape

    from llmops.ui import out, print_json

    if json:
        print_json({"ok": d.ok, **d.model_dump(mode="json", exclude={"view"})})
    else:
        marks = {
            "ok": "[green]ok[/green]",
            "info": "[blue]info[/blue]",
            "warn": "[yellow]warn[/yellow]",
            "fail": "[red]FAIL[/red]",
        }
        out.print(f"[bold]{escape(d.url)}[/bold] ({d.kind})")
        for f in d.findings:
            out.print(f"  {marks[f.status]:>4} {f.check}: {escape(f.message)}", highlight=False)
            if f.action and f.status in ("warn", "fail"):
                out.print(f"       [dim]-> {escape(f.action)}[/dim]", highlight=False)
        out.print("healthy" if d.ok else "[red]something is wrong[/red]")
    if not d.ok:
        raise typer.Exit(1)


def _default_targets(st: object) -> list[str]:
    from llmops.errors import UsageError

    ws = st.workspace()  # type: ignore[attr-defined]
    if ws.bench.target:
        return [ws.bench.target]
    raise UsageError(
        "no endpoint to watch", hint="give one or more URLs, e.g. llmops monitor top http://127.0.0.1:4000"
    )


def _fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def render_views(views: list[EndpointView]) -> list:
    from llmops.ui import table

    rows = [
        [
            v.url,
            v.kind if v.reachable else "unreachable",
            _fmt(v.requests_running, "g"),
            _fmt(v.requests_waiting, "g"),
            "-" if v.kv_cache_usage is None else f"{v.kv_cache_usage:.0%}",
            _fmt(v.requests_per_s, ".1f"),
            _fmt(v.errors_per_s, ".1f"),
            _fmt(v.tokens_in_per_s, ".0f"),
            _fmt(v.tokens_out_per_s, ".0f"),
            f"{_fmt(v.ttft_p50_ms)}/{_fmt(v.ttft_p99_ms)}",
            f"{_fmt(v.itl_p50_ms)}/{_fmt(v.itl_p99_ms)}",
            f"{_fmt(v.e2e_p50_ms)}/{_fmt(v.e2e_p99_ms)}",
        ]
        for v in views
    ]
    cols = [
        "endpoint",
        "kind",
        "running",
        "waiting",
        "KV",
        "req/s",
        "5xx/s",
        "tok in/s",
        "tok out/s",
        "TTFT p50/p99 ms",
        "ITL p50/p99 ms",
        "E2E p50/p99 ms",
    ]
    out = [table(None, cols, rows)]
    deps = [
        [
            v.url,
            d.route,
            d.deployment,
            {True: "healthy", False: "COOLED DOWN", None: "?"}[d.healthy],
            _fmt(d.requests_per_s, ".1f"),
            _fmt(d.failures_per_s, ".1f"),
        ]
        for v in views
        for d in v.deployments
    ]
    if deps:
        out.append(
            table(
                "gateway deployments",
                ["gateway", "route", "deployment", "state", "calls/s", "failures/s"],
                deps,
            )
        )
    notes = sorted({f"{v.url}: {why}" for v in views for why in v.unavailable.values()})
    if notes:
        out.append(table("not available", ["why"], [[n] for n in notes]))
    return out
