"""`llmops serve MODEL`: profile -> engine command -> a supervised, ready endpoint (or --dry-run / --k8s)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from llmops.context import state
from llmops.options import DryRunOpt, JsonOpt, ModelArg, NodeOpt, OutputOpt, VerboseOpt, setting_flags


@setting_flags("serve", after="node")
def serve(
    ctx: typer.Context,
    model: ModelArg = None,
    node: NodeOpt = None,
    log_file: Annotated[
        Path | None, typer.Option("--log-file", help="Engine log (default: the data dir).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Start even when the plan says it does not fit; overwrite a file written by --k8s -o.",
        ),
    ] = False,
    k8s: Annotated[
        bool, typer.Option("--k8s", help="Write Kubernetes manifests instead of serving here.")
    ] = False,
    replicas: Annotated[
        int, typer.Option("--replicas", min=1, help="--k8s: replicas (groups when multi-node).")
    ] = 1,
    output: OutputOpt = None,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
    settings: dict[str, Any] | None = None,
) -> None:
    """Serve a model with the engine its profile names; Ctrl-C stops it cleanly.

    Example: llmops serve smollm2 --port 8000      (vLLM: llmops serve llama-70b --tp 4 --dry-run)
    """
    from llmops.serve import prepare_for

    if output is not None and not k8s:
        from llmops.errors import UsageError

        raise UsageError("-o/--output is where --k8s writes its manifests", hint="add --k8s, or drop -o")
    st = state(ctx, json=json, verbose=verbose)
    prepared = prepare_for(st.catalog(), st.workspace(), model, node, settings or {})
    if k8s:
        return _k8s(prepared, replicas=replicas, output=output, force=force, as_json=st.json)
    if dry_run:
        return _dry_run(prepared, force=force, as_json=st.json)
    _serve(prepared, log_file=log_file, force=force, as_json=st.json, stream=st.verbose)


def _dry_run(prepared: Any, *, force: bool, as_json: bool) -> None:
    from llmops.serve import dry_run
    from llmops.ui import out, print_json, table

    doc = dry_run(prepared, force=force)
    if as_json:
        return print_json(doc)
    env = " ".join(f"{k}={v}" for k, v in doc["env"].items())
    out.print(
        " ".join(filter(None, [env, doc["command_line"]])), markup=False, highlight=False, soft_wrap=True
    )
    if doc["exec_command_line"] != doc["command_line"]:  # started from an engine environment here
        out.print(f"runs here as: {doc['exec_command_line']}", markup=False, highlight=False, soft_wrap=True)
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
    if doc["hosts"]:
        out.print(
            "\n".join(
                ["multi-node (vLLM's launcher): run on each host, head first"]
                + [f"# {h['role']} (rank {h['rank']}):\n{h['command']}" for h in doc["hosts"]]
            ),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if doc["ray_steps"]:
        out.print(
            "\n".join(["multi-node (vLLM Ray backend):", *doc["ray_steps"]]), markup=False, highlight=False
        )


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v.get("name", v) if isinstance(v, dict) else v) for v in value) or "-"
    return "-" if value is None else str(value)


def _k8s(prepared: Any, *, replicas: int, output: Path | None, force: bool, as_json: bool) -> None:
    from llmops.serve import manifests, to_yaml, write_manifests
    from llmops.serve.k8s import k8s_checks
    from llmops.serve.preflight import enforce
    from llmops.ui import hint, out, print_json

    enforce(k8s_checks(prepared, force=force))
    if output is None:
        docs = manifests(prepared, replicas=replicas)
        return print_json(docs) if as_json else out.print(to_yaml(docs), markup=False, highlight=False)
    path, docs = write_manifests(prepared, output=output, replicas=replicas, force=force)
    if as_json:
        return print_json({"path": str(path), "kinds": [d["kind"] for d in docs]})
    hint(f"wrote {path} ({', '.join(d['kind'] for d in docs)}); apply with: kubectl apply -f {path}")


def _serve(prepared: Any, *, log_file: Path | None, force: bool, as_json: bool, stream: bool) -> None:
    import os

    from rich.markup import escape

    from llmops.paths import user_data_dir
    from llmops.serve import ray_steps, serve_foreground
    from llmops.ui import err, hint, interactive, out, print_json, warn

    launch = prepared.launch
    # one log per run: two serves racing for a port must not truncate each other's log
    log = log_file or user_data_dir() / "serve" / f"{launch.engine}-{launch.port}-{os.getpid()}.log"
    if steps := ray_steps(prepared.settings, launch):
        warn("TP x PP spans several nodes; start Ray on them first:\n" + "\n".join(steps))

    def ready(ep: Any) -> None:
        if ep.launch.headless:  # a multi-node follower: the API is the head's
            return _follower_ready(prepared.settings, ep, as_json=as_json)
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
        out.print(f"serving {escape(ep.model)} ({ep.engine}, pid {ep.pid}) at {ep.base_url}", highlight=False)
        out.print(f"model name: {ep.model}", highlight=False, markup=False)
        out.print(f"try it:\n  {_curl(ep.base_url, ep.model)}", markup=False, highlight=False)
        hint(f"engine log: {ep.log_path} · Ctrl-C stops it")

    outcome = serve_foreground(
        prepared,
        force=force,
        log_path=log,
        progress=_Spinner() if interactive() and not stream else None,
        on_line=(lambda line: err.print(line, markup=False, highlight=False)) if stream else None,
        on_ready=ready,
        on_note=warn,
    )
    hint(
        f"{outcome.stopped_by}: stopped {launch.engine} (status {outcome.exit_code}); port {launch.port} is free"
    )
    raise typer.Exit(outcome.exit_code)


def _follower_ready(s: Any, ep: Any, *, as_json: bool) -> None:
    from llmops.ui import hint, out, print_json

    head = f"{s['master_addr']}:{s['master_port']}"
    if as_json:
        return print_json({"role": "follower", "head": head, "pid": ep.pid, "log": str(ep.log_path)})
    out.print(
        f"follower rank {s['node_rank']} of {ep.engine} started (pid {ep.pid}); it joins the head at {head}, "
        "which serves the API",
        highlight=False,
        markup=False,
    )
    hint(f"engine log: {ep.log_path} · Ctrl-C stops it")


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
