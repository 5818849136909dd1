"""`llmops serve MODEL`: profile -> engine command -> a supervised, ready endpoint (or --dry-run / --k8s)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from llmops.context import state
from llmops.options import (
    DryRunOpt,
    GpuMemUtilOpt,
    JsonOpt,
    MaxModelLenOpt,
    ModelArg,
    NodeOpt,
    PpOpt,
    TpOpt,
    VerboseOpt,
)

ENGINES = "vllm, llamacpp, sglang, trtllm"


def serve(
    ctx: typer.Context,
    model: ModelArg = None,
    node: NodeOpt = None,
    tp: TpOpt = None,
    pp: PpOpt = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="Port (default 8000).")] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1).")
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", "-e", help=f"Engine: {ENGINES} (default: profile's).")
    ] = None,
    max_model_len: MaxModelLenOpt = None,
    gpu_memory_utilization: GpuMemUtilOpt = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="auto, bfloat16, float16 or float32.")] = None,
    quantization: Annotated[
        str | None, typer.Option("--quantization", "-q", help="fp8, awq, gptq, w4a16, ...")
    ] = None,
    kv_cache_dtype: Annotated[
        str | None, typer.Option("--kv-cache-dtype", help="auto, fp8, fp8_e4m3, fp8_e5m2.")
    ] = None,
    prefix_caching: Annotated[
        bool | None,
        typer.Option(
            "--enable-prefix-caching/--no-enable-prefix-caching",
            help="vLLM automatic prefix caching.",
            show_default=False,
        ),
    ] = None,
    max_num_seqs: Annotated[
        int | None, typer.Option("--max-num-seqs", min=1, help="Most sequences per batch.")
    ] = None,
    max_num_batched_tokens: Annotated[
        int | None, typer.Option("--max-num-batched-tokens", min=1, help="Most tokens per scheduler step.")
    ] = None,
    served_model_name: Annotated[
        str | None, typer.Option("--served-model-name", help="Name clients send.")
    ] = None,
    ready_timeout: Annotated[
        float | None, typer.Option("--ready-timeout", min=1, help="Seconds to wait (120).")
    ] = None,
    log_file: Annotated[
        Path | None, typer.Option("--log-file", help="Engine log (default: the data dir).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Start even when the plan says it does not fit; overwrite files written by --k8s -o.",
        ),
    ] = False,
    k8s: Annotated[
        bool, typer.Option("--k8s", help="Write Kubernetes manifests instead of serving here.")
    ] = False,
    replicas: Annotated[
        int, typer.Option("--replicas", min=1, help="--k8s: replicas (groups when multi-node).")
    ] = 1,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="--k8s: write NAME.yaml in this folder.")
    ] = None,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Serve a model with the engine its profile names; Ctrl-C stops it cleanly.

    Example: llmops serve smollm2 --port 8000      (vLLM: llmops serve llama-70b --tp 4 --dry-run)
    """
    from llmops.serve import prepare
    from llmops.serve.api import resolve_targets

    st = state(ctx, json=json, verbose=verbose)
    ws = st.workspace()
    model_p, node_p, targets = resolve_targets(st.catalog(), ws, model, node)
    overrides: dict[str, Any] = {
        "tensor_parallel_size": tp,
        "pipeline_parallel_size": pp,
        "port": port,
        "host": host,
        "engine": engine,
        "max_model_len": max_model_len,
        "gpu_memory_utilization": gpu_memory_utilization,
        "dtype": dtype,
        "quantization": quantization,
        "kv_cache_dtype": kv_cache_dtype,
        "enable_prefix_caching": prefix_caching,
        "max_num_seqs": max_num_seqs,
        "max_num_batched_tokens": max_num_batched_tokens,
        "served_model_name": served_model_name,
        "ready_timeout": ready_timeout,
    }
    prepared = prepare(model_p, node_p, overrides, ws.serve)
    if k8s:
        return _k8s(prepared, replicas=replicas, output=output, force=force, as_json=st.json)
    if dry_run:
        return _dry_run(prepared, targets, force=force, as_json=st.json)
    _serve(prepared, log_file=log_file, force=force, as_json=st.json, stream=st.verbose)


def _dry_run(prepared: Any, targets: dict, *, force: bool, as_json: bool) -> None:
    from llmops.serve.api import describe
    from llmops.serve.preflight import config_checks, enforce

    checks = config_checks(prepared.settings, prepared.launch, force=force)
    enforce(checks)
    doc = describe(prepared, checks, targets)
    from llmops.ui import out, print_json, table

    if as_json:
        return print_json(doc)
    out.print(doc["command"], markup=False, highlight=False, soft_wrap=True)
    if doc["env_from_host"]:
        out.print("environment passed through by name: " + ", ".join(doc["env_from_host"]), highlight=False)
    out.print(
        table(
            "settings",
            ["setting", "value", "from"],
            ([k, _show(v["value"]), v["origin"]] for k, v in doc["settings"].items()),
        )
    )
    out.print(
        table(
            "pre-flight",
            ["check", "ok", "detail"],
            ([c["name"], {True: "yes", False: "no", None: "-"}[c["ok"]], c["detail"]] for c in doc["checks"]),
        )
    )
    if doc["ray_steps"]:
        out.print(
            "\n".join(["multi-node (vLLM Ray backend):", *doc["ray_steps"]]), markup=False, highlight=False
        )


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(getattr(v, "name", v)) for v in value) or "-"
    return "-" if value is None else str(value)


def _k8s(prepared: Any, *, replicas: int, output: Path | None, force: bool, as_json: bool) -> None:
    from llmops.serve.k8s import k8s_name, manifests, to_yaml
    from llmops.serve.preflight import config_checks, enforce

    enforce(config_checks(prepared.settings, prepared.launch, force=force))
    docs = manifests(prepared, replicas=replicas)
    from llmops.ui import err, out, print_json

    if output is None:
        return print_json(docs) if as_json else out.print(to_yaml(docs), markup=False, highlight=False)
    from llmops.errors import UsageError

    path = output / f"{k8s_name(prepared.settings.served_name)}.yaml"
    if path.exists() and not force:
        raise UsageError(
            f"{path} already exists", hint="choose another -o folder, or pass --force to overwrite"
        )
    output.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(docs))
    if as_json:
        return print_json({"path": str(path), "kinds": [d["kind"] for d in docs]})
    err.print(
        f"wrote {path} ({', '.join(d['kind'] for d in docs)}); apply with: kubectl apply -f {path}",
        highlight=False,
    )


def _serve(prepared: Any, *, log_file: Path | None, force: bool, as_json: bool, stream: bool) -> None:
    from llmops.paths import user_data_dir
    from llmops.serve.foreground import serve_foreground
    from llmops.serve.ray import ray_steps
    from llmops.ui import err, hint, interactive, out, print_json, warn

    launch = prepared.launch
    log = log_file or user_data_dir() / "serve" / f"{launch.engine}-{launch.port}.log"
    if steps := ray_steps(prepared.settings, launch):
        warn("TP x PP spans several nodes; start Ray on them first:\n" + "\n".join(steps))

    def ready(ep: Any) -> None:
        if as_json:
            return print_json(
                {
                    "base_url": ep.base_url,
                    "model": ep.model,
                    "pid": ep.pid,
                    "engine": ep.engine,
                    "log": str(ep.log_path),
                }
            )
        out.print(f"serving {ep.model} ({ep.engine}, pid {ep.pid}) at {ep.base_url}", highlight=False)
        out.print(f"model name: {ep.model}", highlight=False)
        out.print(f"try it:\n  {_curl(ep.base_url, ep.model)}", markup=False, highlight=False)
        hint(f"engine log: {ep.log_path} · Ctrl-C stops it")

    outcome = serve_foreground(
        prepared,
        force=force,
        log_path=log,
        progress=_Spinner() if interactive() and not stream else None,
        on_line=(lambda line: err.print(line, markup=False, highlight=False)) if stream else None,
        on_ready=ready,
    )
    if outcome.stopped_by:
        status = f"status {outcome.exit_code}"
        hint(f"{outcome.stopped_by}: stopped {launch.engine} ({status}); port {launch.port} is free")
    elif outcome.exit_code != 0:
        warn(
            f"{launch.engine} exited with status {outcome.exit_code}; last lines of {outcome.log_path}:\n"
            f"{outcome.log_tail}"
        )
    raise typer.Exit(outcome.exit_code)


def _curl(base_url: str, model: str) -> str:
    import json as jsonlib
    import shlex

    body = {"model": model, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 64}
    return (
        f"curl {base_url}/chat/completions -H 'Content-Type: application/json' "
        f"-d {shlex.quote(jsonlib.dumps(body))}"
    )


class _Spinner:
    """A ProgressReporter that shows a spinner on stderr while the engine starts."""

    def __init__(self) -> None:
        self._status: Any = None

    def start(self, total: float | None, description: str) -> None:
        from llmops.ui import err

        self._status = err.status(description)
        self._status.start()

    def update(self, advance: float = 1, **fields: Any) -> None:
        pass

    def finish(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
