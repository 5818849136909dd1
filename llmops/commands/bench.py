"""`llmops bench`: benchmark a streaming endpoint (or serve a model and benchmark it) and gate on SLOs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops.context import state
from llmops.options import (
    DryRunOpt,
    ForceOpt,
    JsonOpt,
    ModelArg,
    ModelNameOpt,
    NodeOpt,
    OutputOpt,
    ProviderOpt,
    TargetOpt,
    VerboseOpt,
)

Opt = typer.Option


def bench(
    ctx: typer.Context,
    model_ref: ModelArg = None,
    target: TargetOpt = None,
    model: ModelNameOpt = None,
    endpoint: Annotated[str | None, Opt("--endpoint", help="chat, completions or anthropic.")] = None,
    dataset: Annotated[str | None, Opt("--dataset", help="random, jsonl:FILE or sharegpt:FILE.")] = None,
    input_len: Annotated[
        int | None, Opt("--input-len", min=1, help="Prompt tokens (random dataset).")
    ] = None,
    output_len: Annotated[
        int | None, Opt("--output-len", min=1, help="Output tokens asked for (max_tokens).")
    ] = None,
    prefix_len: Annotated[
        int | None, Opt("--prefix-len", min=0, help="Tokens shared by every prompt's start.")
    ] = None,
    num_prompts: Annotated[int | None, Opt("--num-prompts", min=1, help="Requests to send.")] = None,
    duration: Annotated[
        float | None, Opt("--duration", min=0.1, help="Send for this many seconds instead.")
    ] = None,
    request_rate: Annotated[
        str | None, Opt("--request-rate", "-r", help="Requests/s (Poisson/gamma) or inf.")
    ] = None,
    burstiness: Annotated[
        float | None, Opt("--burstiness", help="Gamma shape: 1 Poisson, <1 burstier.")
    ] = None,
    max_concurrency: Annotated[
        int | None, Opt("--max-concurrency", min=1, help="Cap on requests in flight.")
    ] = None,
    sweep: Annotated[
        bool, Opt("--sweep", help="Run a series of concurrencies (or rates, with --request-rate).")
    ] = False,
    sweep_values: Annotated[str | None, Opt("--sweep-values", help="The series, e.g. 1,4,16,64.")] = None,
    warmup: Annotated[
        int | None, Opt("--warmup", min=0, help="Unmeasured requests first (default 1).")
    ] = None,
    seed: Annotated[int | None, Opt("--seed", help="Seed for prompts and arrivals.")] = None,
    slo: Annotated[
        list[str] | None, Opt("--slo", help="NAME=VALUE gate, e.g. ttft_p99_ms=500, error_rate=0.01.")
    ] = None,
    baseline: Annotated[
        Path | None, Opt("--baseline", help="An earlier result (-o) to compare with.")
    ] = None,
    max_regression: Annotated[
        float | None, Opt("--max-regression", help="Allowed worsening vs --baseline, %.")
    ] = None,
    timeout: Annotated[
        float | None, Opt("--timeout", min=0.1, help="Per-request timeout, s (default 300).")
    ] = None,
    ignore_eos: Annotated[
        bool | None,
        Opt(
            "--ignore-eos/--no-ignore-eos",
            help="Ask for exactly --output-len tokens (default: on, except for provider APIs).",
        ),
    ] = None,
    provider: ProviderOpt = None,
    node: NodeOpt = None,
    output: OutputOpt = None,
    html: Annotated[Path | None, Opt("--html", help="Write a self-contained HTML report with plots.")] = None,
    force: ForceOpt = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Benchmark streaming latency and throughput; exit 1 when an SLO or the baseline comparison breaks.

    Without --target, the model profile is served first (on --node) and stopped after.

    Every gate (--slo, --baseline) and output (-o, --html) is checked before the first request.

    Example: llmops bench --target http://127.0.0.1:8000/v1 --num-prompts 200 --max-concurrency 16 --slo ttft_p99_ms=500
    """
    from llmops.bench import BenchFlags, bench, check_outputs, resolve, write_outputs
    from llmops.ui import RichProgress, err, print_json, warn

    st = state(ctx, json=json, verbose=verbose)
    flags = BenchFlags(
        model_ref=model_ref,
        target=target,
        model=model,
        endpoint=endpoint,
        dataset=dataset,
        input_len=input_len,
        output_len=output_len,
        prefix_len=prefix_len,
        num_prompts=num_prompts,
        duration=duration,
        request_rate=request_rate,
        burstiness=burstiness,
        max_concurrency=max_concurrency,
        sweep=sweep,
        sweep_values=sweep_values,
        warmup=warmup,
        seed=seed,
        slos=slo or [],
        baseline=baseline,
        max_regression=max_regression,
        timeout=timeout,
        ignore_eos=ignore_eos,
        provider=provider,
        node=node,
    )
    settings = resolve(flags, st.workspace(), st.catalog())
    for note in settings.notes:
        warn(note)
    if dry_run:
        from llmops.settings import dry_run_document

        c = settings.config
        facts = {
            "serve_first": settings.needs_server,
            "target_url": None if settings.needs_server else c.target,
            "sweep": c.sweep,
            "sweep_of": c.sweep_of,
        }
        if st.json:
            print_json(dry_run_document("bench", settings.settings, **facts))
        else:
            _print_plan(settings)
        return
    check_outputs(output, html, force=force)
    result, points = bench(settings, progress=None if st.json else RichProgress())
    write_outputs(result, points, output, html, force=force)
    print_json(result) if st.json else print_report(result, result.config)
    if not result.passed:
        err.print(f"bench failed: {result.verdict}", highlight=False, markup=False)
        raise typer.Exit(1)


def _print_plan(settings) -> None:
    from llmops.ui import out, table

    _header(settings.config)
    out.print(table("settings", ["setting", "value", "from"], settings.settings.rows()))


def _header(c) -> None:
    from llmops.ui import out

    load = f"rate {c.request_rate}, concurrency {c.max_concurrency or 'unlimited'}"
    where = f"served by llmops from profile {c.model_profile}" if c.served_by_llmops else f"at {c.target}"
    out.print(
        f"bench {c.model or '(model from target)'} via the {c.endpoint} endpoint {where}; {c.dataset} prompts, {load}",
        highlight=False,
        markup=False,
    )


def print_report(result, config) -> None:
    """The human view: what ran, the figures, the latency table, and the gates."""
    from llmops.bench import LATENCIES
    from llmops.humanize import number, percent, seconds, usd, with_unit
    from llmops.ui import out, table

    _header(config)
    r = result
    rows = [
        ("completed / failed", f"{number(r.completed)} / {number(r.failed)}"),
        ("errors", ", ".join(f"{k}: {number(v)}" for k, v in r.errors.items()) or "none"),
        ("duration", seconds(r.duration)),
        ("request throughput", with_unit(r.request_throughput, "req/s")),
        ("goodput (within SLOs)", with_unit(r.request_goodput, "req/s")),
        ("output throughput", with_unit(r.output_throughput, "tok/s")),
        ("total token throughput", with_unit(r.total_token_throughput, "tok/s")),
        (
            "mean input / output tokens",
            f"{number(r.mean_input_tokens or 0)} / {number(r.mean_output_tokens or 0)} "
            f"(from {r.input_tokens_from} / {r.output_tokens_from})",
        ),
        ("cost per 1K requests", usd(r.cost_per_1k_requests)),
    ]
    if r.host_steal_share is not None:
        rows.append(("host CPU steal (hypervisor)", percent(r.host_steal_share)))
    if r.server_metrics is not None:
        s = r.server_metrics
        rows.append(
            (
                "server view (/metrics)",
                f"KV peak {percent(s.kv_cache_usage_peak)}, running peak {number(s.running_peak)}, "
                f"waiting peak {number(s.waiting_peak)}, prefix hit rate "
                f"{percent(s.prefix_cache_hit_rate)}, server mean TTFT {with_unit(s.server_mean_ttft_ms, 'ms')}"
                + (
                    f", speculative acceptance {percent(s.spec_decode_acceptance_rate)}"
                    if s.spec_decode_acceptance_rate is not None
                    else ""
                ),
            )
        )
    out.print(table(f"bench: {r.load}", ["figure", "value"], rows))
    out.print(
        table(
            "latency (ms)",
            ["metric", "mean", "median", "p90", "p95", "p99", "max"],
            (
                [
                    m.upper(),
                    *(
                        number(getattr(r, f"{s}_{m}_ms"))
                        for s in ("mean", "median", "p90", "p95", "p99", "max")
                    ),
                ]
                for m in LATENCIES
            ),
        )
    )
    if r.sweep:
        out.print(
            table(
                "sweep",
                ["load", "req/s", "out tok/s", "median TTFT ms", "p99 TTFT ms", "median TPOT ms", "failed"],
                (
                    [
                        p.load,
                        number(p.request_throughput),
                        number(p.output_throughput),
                        number(p.median_ttft_ms),
                        number(p.p99_ttft_ms),
                        number(p.median_tpot_ms),
                        number(p.failed),
                    ]
                    for p in r.sweep
                ),
            )
        )
    checks = [*r.slo_checks, *r.baseline_checks]
    if checks:
        out.print(table("gates", ["check", "result"], ([ck.name, ck.describe()] for ck in checks)))
    out.print(
        "TTFT: sent -> first content chunk; ITL: gaps between content chunks; TPOT: (E2E - TTFT) / "
        "(output tokens - 1); E2E: sent -> last byte.",
        style="dim",
        highlight=False,
    )
    from llmops.steal import note

    if (said := note([p.host_steal_share for p in r.sweep or [r]])) is not None:
        from llmops.ui import warn

        warn(said)
