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
    from llmops.gateway.plan import loader

    _run(
        plan,
        as_json=st.json,
        reload=loader(st.config, st.profiles_dir, host=host, port=port, workers=workers),
    )


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


def _run(plan, *, as_json: bool, reload) -> None:  # type: ignore[no-untyped-def]
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
        loader=reload,
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


AdminUrlOpt = Annotated[
    str | None,
    Opt("--url", help="The running gateway (default: host and port as `llmops gateway` resolves them)."),
]


def _admin(ctx: typer.Context, method: str, path: str, body: dict | None, url: str | None) -> dict:
    from llmops.gateway.admin import call, target
    from llmops.gateway.config import gateway_section

    st = state(ctx)
    base, key = target(lambda: gateway_section(st.workspace()), url)
    return call(base, method, path, body, key)


@app.command("reload")
def reload(
    ctx: typer.Context,
    all_: Annotated[
        bool, Opt("--all", help="Also reload every replica that shares the gateway's redis.")
    ] = False,
    url: AdminUrlOpt = None,
    json: JsonOpt = False,
) -> None:
    """Re-read llmops.yaml and the profiles in the running gateway and swap them in without a restart.

    Requests in flight finish on the old configuration; an invalid file changes nothing (exit 2).
    The same happens on SIGHUP (kill -HUP <pid>).

    Example: llmops gateway reload --all
    """
    from llmops.ui import hint, out, print_json

    st = state(ctx, json=json)
    doc = _admin(ctx, "POST", "/admin/reload", {"all": all_}, url)
    if st.json:
        return print_json(doc)
    out.print(f"generation {doc['generation']}: {doc['summary']}", highlight=False)
    if doc["changes"]["restart_needed"]:
        hint(f"takes a restart to change: {', '.join(doc['changes']['restart_needed'])}")
    if "announced_to" in doc:
        hint(f"announced to {doc['announced_to']} other replica(s) through redis")


keys_app = typer.Typer(no_args_is_help=True, help="Client keys made at run time (stored as hashes only).")
app.add_typer(keys_app, name="keys")
KeyName = Annotated[str, typer.Argument(help="The key's name (what logs and metrics show).")]


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: KeyName,
    rpm: Annotated[int | None, Opt("--rpm", min=1, help="Requests per minute.")] = None,
    tpm: Annotated[int | None, Opt("--tpm", min=1, help="Tokens per minute.")] = None,
    budget_usd: Annotated[float | None, Opt("--budget-usd", min=0.000001, help="Spend limit in USD.")] = None,
    routes: Annotated[
        list[str] | None, Opt("--routes", help="A route this key may use (repeat; default: all).")
    ] = None,
    expires: Annotated[str | None, Opt("--expires", help="Lifetime: 90m, 12h, 30d (default: never).")] = None,
    url: AdminUrlOpt = None,
    json: JsonOpt = False,
) -> None:
    """Make a key in the running gateway; its value is printed once, only its hash is kept.

    Example: llmops gateway keys create ci --rpm 60 --budget-usd 5 --expires 30d
    """
    from llmops.gateway.keys import expiry_s
    from llmops.ui import hint, out, print_json

    st = state(ctx, json=json)
    body = {"name": name, "rpm": rpm, "tpm": tpm, "budget_usd": budget_usd, "routes": routes or None}
    body["expires_in_s"] = expiry_s(expires)
    doc = _admin(ctx, "POST", "/admin/keys", body, url)
    if st.json:
        return print_json(doc)
    out.print(doc["key"], highlight=False, markup=False)
    hint(f"key '{name}': shown this once; only its hash is stored")


@keys_app.command("list")
def keys_list(ctx: typer.Context, url: AdminUrlOpt = None, json: JsonOpt = False) -> None:
    """Every key by name: source, routes, limits, spend, last use and expiry (never a key's value).

    Example: llmops gateway keys list --json
    """
    from llmops.gateway.keys import when
    from llmops.ui import out, print_json, table

    st = state(ctx, json=json)
    doc = _admin(ctx, "GET", "/admin/keys", None, url)
    if st.json:
        return print_json(doc)
    cols = ["name", "source", "routes", "rpm", "tpm", "budget_usd", "spent_usd", "last_used", "expires_at"]
    rows = [
        [
            k["name"],
            k["source"],
            ", ".join(k["routes"] or ["all"]),
            *(str(k[c] if k[c] is not None else "-") for c in ("rpm", "tpm", "budget_usd", "spent_usd")),
            when(k["last_used"]),
            when(k["expires_at"]),
        ]
        for k in doc["keys"]
    ]
    out.print(table(f"keys ({doc['store']})", cols, rows))


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, name: KeyName, url: AdminUrlOpt = None, json: JsonOpt = False) -> None:
    """Remove a run-time key: its next request gets 401, on every replica.

    Example: llmops gateway keys revoke ci
    """
    from llmops.ui import out, print_json

    st = state(ctx, json=json)
    doc = _admin(ctx, "POST", f"/admin/keys/{name}/revoke", None, url)
    if st.json:
        return print_json(doc)
    out.print(f"revoked key '{name}'", highlight=False)


@keys_app.command("rotate")
def keys_rotate(
    ctx: typer.Context,
    name: KeyName,
    grace: Annotated[
        str, Opt("--grace", help="How long the old value keeps working: 0, 90s, 10m, 1h.")
    ] = "10m",
    url: AdminUrlOpt = None,
    json: JsonOpt = False,
) -> None:
    """Give a run-time key a new value (printed once); the old one works until the grace ends.

    Example: llmops gateway keys rotate ci --grace 10m
    """
    from llmops.gateway.keys import grace_s
    from llmops.ui import hint, out, print_json

    st = state(ctx, json=json)
    doc = _admin(ctx, "POST", f"/admin/keys/{name}/rotate", {"grace_s": grace_s(grace)}, url)
    if st.json:
        return print_json(doc)
    out.print(doc["key"], highlight=False, markup=False)
    hint(f"key '{name}': new value shown this once; the old one works for {grace}")
