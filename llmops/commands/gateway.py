"""`llmops gateway`: one OpenAI- and Anthropic-compatible endpoint in front of the fleet (and `usage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops.context import state
from llmops.options import DryRunOpt, ForceOpt, JsonOpt, OutputOpt, VerboseOpt

Opt = typer.Option
app = typer.Typer(invoke_without_command=True, no_args_is_help=False)


@app.callback()
def gateway(
    ctx: typer.Context,
    host: Annotated[str | None, Opt("--host", help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, Opt("--port", min=1, max=65535, help="Port (default 4000).")] = None,
    workers: Annotated[
        int | None, Opt("--workers", min=1, help="Processes (more than 1 needs gateway.redis).")
    ] = None,
    no_probe: Annotated[
        bool, Opt("--no-probe", help="--dry-run: do not check that deployments answer.")
    ] = False,
    k8s: Annotated[bool, Opt("--k8s", help="Write Kubernetes manifests instead of running here.")] = False,
    output: OutputOpt = None,
    force: ForceOpt = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the gateway in the foreground; Ctrl-C drains requests in flight, then stops.

    Routes, keys and limits come from the gateway: section of llmops.yaml (without routes:, every model
    profile and provider model is routable by its own name).

    Example: llmops gateway --dry-run      (then: llmops gateway --port 4000)
    """
    if ctx.invoked_subcommand is not None:
        return
    from llmops.gateway.plan import resolve

    st = state(ctx, json=json, verbose=verbose)
    plan = resolve(st.workspace(), st.catalog(), host=host, port=port, workers=workers)
    if k8s:
        return _k8s(plan, output=output, force=force, as_json=st.json)
    if dry_run:
        return _dry_run(plan, probe=not no_probe, as_json=st.json)
    _run(plan, as_json=st.json)


def _dry_run(plan, *, probe: bool, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from llmops.gateway.plan import describe
    from llmops.gateway.plan import probe as probe_all
    from llmops.ui import out, print_json, table

    doc = describe(plan, probe_all(plan.table) if probe else None)
    if as_json:
        return print_json(doc)
    out.print(
        table(
            "settings",
            ["setting", "value", "from"],
            (
                [k, "-" if v["value"] is None else str(v["value"]), v["origin"]]
                for k, v in doc["settings"].items()
            ),
        )
    )
    rows = []
    for r in doc["routes"]:
        for d in r["deployments"]:
            p = d.get("probe")
            state_ = "-" if p is None else ("ok" if p["ok"] else "FAIL") + f" ({p['detail']})"
            rows.append([r["name"], d["name"], d["api"], d["from"], ", ".join(r["fallbacks"]) or "-", state_])
    out.print(table("routes", ["route", "deployment", "api", "from", "fallbacks", "answers"], rows))
    out.print(
        table(
            "keys",
            ["key", "value from", "routes", "rpm", "tpm", "budget $"],
            (
                [
                    k["name"],
                    k["from"],
                    ", ".join(k["routes"] or ["all"]),
                    str(k["rpm"] or "-"),
                    str(k["tpm"] or "-"),
                    str(k["budget_usd"] or "-"),
                ]
                for k in doc["keys"]
            ),
        )
    )


def _k8s(plan, *, output: Path | None, force: bool, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from llmops.gateway.k8s import manifests, secret_note
    from llmops.k8s import to_yaml
    from llmops.output import check_output_dir, staged_dir
    from llmops.ui import err, hint, out, print_json

    if output is not None:
        check_output_dir(output, force=force)
    docs = manifests(plan)
    if output is None:
        return print_json(docs) if as_json else out.print(to_yaml(docs), markup=False, highlight=False)
    with staged_dir(output, force=force, command="gateway --k8s") as tmp:
        (tmp / "llmops-gateway.yaml").write_text(to_yaml(docs), encoding="utf-8")
    path = output / "llmops-gateway.yaml"
    if as_json:
        return print_json({"path": str(path), "kinds": [d["kind"] for d in docs]})
    err.print(f"wrote {path} ({', '.join(d['kind'] for d in docs)})", highlight=False)
    hint(f"create the Secret first: {secret_note(plan)}")


def _run(plan, *, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from llmops.gateway.server import serve
    from llmops.ui import hint, out, print_json

    def ready(url: str) -> None:
        routes = list(plan.table.routes)
        if as_json:
            return print_json({"url": url, "routes": routes, "usage_log": str(plan.usage_path)})
        out.print(f"gateway at {url}/v1 · routes: {', '.join(routes)}", highlight=False)
        hint(f"metrics: {url}/metrics · usage log: {plan.usage_path} · Ctrl-C drains and stops")

    serve(
        plan.section,
        plan.table,
        host=plan.host,
        port=plan.port,
        workers=plan.workers,
        usage_path=plan.usage_path,
        on_ready=ready,
    )


@app.command("usage")
def usage(
    ctx: typer.Context,
    since: Annotated[str | None, Opt("--since", help="30m, 2h, 7d or a date (default: everything).")] = None,
    by: Annotated[str, Opt("--by", help="Group by key, route or deployment.")] = "key",
    log: Annotated[Path | None, Opt("--log", help="Usage log (default: the gateway's).")] = None,
    json: JsonOpt = False,
) -> None:
    """Summarise the gateway's usage log: requests, errors, tokens, cost and latency.

    Example: llmops gateway usage --since 24h --by route
    """
    from llmops.gateway.config import gateway_section
    from llmops.gateway.usage import default_path, summarize
    from llmops.ui import out, print_json, table

    st = state(ctx, json=json)
    ws_log = gateway_section(st.workspace()).usage_log
    doc = summarize(log or (Path(ws_log) if ws_log else default_path()), since=since, by=by)
    if st.json:
        return print_json(doc)
    cols = [by, "requests", "errors", "input_tokens", "output_tokens", "cost_usd", "p50_latency_ms"]
    out.print(table(f"usage ({doc['log']})", cols, ([str(r[c]) for c in cols] for r in doc["rows"])))


cache_app = typer.Typer(no_args_is_help=True, help="Inspect and empty the gateway's response cache.")
app.add_typer(cache_app, name="cache")
RouteOpt = Annotated[
    str | None, Opt("--route", help="Only this route (name or alias); default: every route.")
]
UrlOpt = Annotated[
    str | None, Opt("--url", help="The running gateway (without redis: the cache lives in its process).")
]


@cache_app.command("stats")
def cache_stats(
    ctx: typer.Context, route: RouteOpt = None, url: UrlOpt = None, json: JsonOpt = False
) -> None:
    """Entries, size, hits, semantic hits, misses and what hits saved, per route.

    Example: llmops gateway cache stats --route chat
    """
    from llmops.gateway.cache.admin import run
    from llmops.gateway.plan import resolve
    from llmops.ui import out, print_json, table

    st = state(ctx, json=json)
    doc = run(resolve(st.workspace(), st.catalog()), "stats", route, url)
    if st.json:
        return print_json(doc)
    cols = [
        "entries",
        "bytes",
        "lookups",
        "hit",
        "semantic_hit",
        "miss",
        "hit_rate",
        "saved_tokens",
        "saved_usd",
    ]
    rows = [
        [name, *(str(s[c]) for c in cols)] for name, s in {**doc["routes"], "total": doc["total"]}.items()
    ]
    out.print(table(f"cache ({doc['store']}: {doc['where']})", ["route", *cols], rows))


@cache_app.command("clear")
def cache_clear(
    ctx: typer.Context, route: RouteOpt = None, url: UrlOpt = None, json: JsonOpt = False
) -> None:
    """Remove cached replies: one route's, or every route's.

    Example: llmops gateway cache clear --route chat
    """
    from llmops.gateway.cache.admin import run
    from llmops.gateway.plan import resolve
    from llmops.ui import out, print_json

    st = state(ctx, json=json)
    doc = run(resolve(st.workspace(), st.catalog()), "clear", route, url)
    if st.json:
        return print_json(doc)
    where = f"route {doc['route']}" if doc["route"] else "every route"
    out.print(
        f"removed {doc['removed']} cached replies ({where}, {doc['store']}: {doc['where']})", highlight=False
    )
