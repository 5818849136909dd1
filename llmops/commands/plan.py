"""`llmops plan`: will this model fit this node, and how many requests can it serve at once?"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from llmops.context import state
from llmops.options import JsonOpt, ModelArg, NodeOpt, setting_flags


@setting_flags("plan", after="node")
def plan(
    ctx: typer.Context,
    model: ModelArg = None,
    node: NodeOpt = None,
    gpus: Annotated[
        int | None, typer.Option("--gpus", min=1, help="What if the node had this many GPUs?")
    ] = None,
    gpu_memory_gib: Annotated[
        float | None,
        typer.Option(
            "--gpu-memory-gib",
            min=0.1,
            help="What if each GPU had this much memory (GiB, as CUDA reports it)?",
        ),
    ] = None,
    all_nodes: Annotated[
        bool, typer.Option("--all-nodes", help="Compare every node profile in one table.")
    ] = False,
    json: JsonOpt = False,
    settings: dict[str, Any] | None = None,
) -> None:
    """Will MODEL fit the node? Per-GPU weights, KV cache tokens, concurrency, a verdict and what to change.

    Example: llmops plan llama-70b --node a100-40gb-x4 --tp 4
    """
    from llmops.plan import plan_for

    st = state(ctx, json=json)
    result = plan_for(
        st.catalog(),
        st.workspace(),
        model,
        node,
        settings or {},
        gpus=gpus,
        gpu_memory_gib=gpu_memory_gib,
        all_nodes=all_nodes,
    )
    if isinstance(result, tuple):
        return _render_rows(st.json, *result)
    if st.json:
        from llmops.ui import print_json

        return print_json(result)
    _render_plan(result)


def _render_plan(p) -> None:
    from rich.markup import escape

    from llmops.profiles.serving import BY_NAME
    from llmops.ui import out, table

    where = "node RAM" if p.device == "cpu" else f"{p.gpus} x {p.gpu_memory_gib:g} GiB GPUs"
    if p.device != "cpu":
        layout = f"TP {p.tp} x PP {p.pp}, {p.replicas} replica(s)"
    elif p.engine == "vllm":
        space = (
            f"{p.cpu_kvcache_space_gib} GiB KV space" if p.cpu_kvcache_space_gib else "KV space from free RAM"
        )
        layout = f"vLLM's CPU build, {space}"
    else:
        layout = "llama.cpp on the CPU"
    out.print(
        f"[bold]{escape(p.model)}[/bold] on [bold]{escape(p.node)}[/bold] ({where}; {layout})",
        highlight=False,
    )
    unit = "RAM" if p.device == "cpu" else "per GPU"
    kib = p.kv_bytes_per_token_per_gpu / 1024
    rows = [
        (
            "settings",
            f"dtype {p.dtype}, quantization {p.quantization}, kv cache {p.kv_cache_dtype}, "
            f"utilization {p.gpu_memory_utilization:g}, max_model_len {p.max_model_len:,}",
        ),
        (f"budget {unit}", f"{p.memory_budget_gib_per_gpu:.2f} GiB"),
        (
            f"weights {unit}",
            f"{p.weights_gib_per_gpu:.2f} GiB  ({p.num_params / 1e9:.2f} B params; {p.weights_source})",
        ),
        (
            f"activations {unit}",
            f"{p.activation_gib_per_gpu:.2f} GiB  (+ {p.non_torch_gib_per_gpu:.2f} GiB non-torch)",
        ),
        (f"KV cache {unit}", f"{p.kv_cache_gib_per_gpu:.2f} GiB at {kib:,.1f} KiB per token"),
        ("KV cache tokens", f"{p.kv_cache_tokens:,}"),
        ("max concurrency", f"{p.max_concurrency:.2f} requests of {p.max_model_len:,} tokens"),
    ]
    out.print(table(None, ["", ""], rows))
    color = {"fits": "green", "poor": "yellow", "does-not-fit": "red"}[p.verdict]
    out.print(f"[{color}]{escape(p.summary())}[/{color}]", highlight=False)
    for note in p.notes:
        out.print(f"note: {note}", highlight=False, markup=False)
    if p.recommendations:
        out.print(
            table(
                "what to change",
                ["change", "flags", "verdict", "KV tokens", "concurrency"],
                (
                    [
                        r.description,
                        " ".join(f"{BY_NAME[k].flag} {v}" for k, v in r.changes.items()),
                        r.result.verdict,
                        f"{r.result.kv_cache_tokens:,}",
                        f"{r.result.max_concurrency:.1f}",
                    ]
                    for r in p.recommendations
                ),
            )
        )


def _render_rows(as_json: bool, model: str, rows) -> None:
    from llmops.ui import out, print_json, table

    if as_json:
        return print_json({"model": model, "nodes": rows})
    body = []
    for r in rows:
        p = r.plan
        if p is None:
            body.append([r.node, "-", "-", "-", "-", "-", r.error])
            continue
        best = p.recommendations[0] if p.recommendations and p.verdict != "fits" else None
        body.append(
            [
                r.node,
                p.verdict,
                f"{p.tp}x{p.pp}" if p.device == "gpu" else "cpu",
                f"{p.weights_gib_per_gpu:.1f}",
                f"{p.kv_cache_tokens:,}",
                f"{p.max_concurrency:.1f}",
                f"{best.description} -> {best.result.verdict}" if best else "",
            ]
        )
    out.print(
        table(
            f"{model} on every node",
            ["node", "verdict", "tp x pp", "weights GiB/GPU", "KV tokens", "concurrency", "detail"],
            body,
        )
    )
