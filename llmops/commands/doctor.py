"""`llmops doctor`: what this machine has for each capability."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops.context import state
from llmops.options import EngineOpt, JsonOpt


def doctor(
    ctx: typer.Context,
    json: JsonOpt = False,
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", help="Diagnose this running endpoint instead (monitor diagnose)."),
    ] = None,
    log: Annotated[Path | None, typer.Option("--log", help="Diagnose this engine log instead.")] = None,
    engine: EngineOpt = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.5, help="Seconds for --endpoint's test request.")
    ] = 30.0,
    self_check: Annotated[
        bool,
        typer.Option(
            "--self-check",
            help="Run llama.cpp's CPU self-check again (a child process per setting); exit 1 if it fails.",
        ),
    ] = False,
) -> None:
    """Check Python, GPUs, engines, libraries, SDKs and which API keys are set (never their values).

    With --endpoint URL or --log FILE: diagnose a running server or an engine's log, exit 1 on trouble.
    Example: llmops doctor --json; llmops doctor --self-check; llmops doctor --endpoint http://127.0.0.1:8000/v1
    """
    if endpoint or log:
        from llmops.commands.monitor import run_diagnosis, run_log_diagnosis

        if log is not None:
            run_log_diagnosis(ctx, log, engine, json)
        if endpoint is not None:
            run_diagnosis(ctx, endpoint, None, timeout, None, json)
        return
    from llmops.doctor import collect

    st = state(ctx, json=json)
    providers = st.catalog().all("provider")
    from llmops.serve.envs import engine_envs

    report = collect(
        sorted({p.profile.api_key_env for p in providers if p.profile.api_key_env}), envs=engine_envs()
    )
    cp = None
    if any(p.name == "llama-cpp-python" and p.version for p in report.packages):
        from llmops.serve.engines.llamacpp_selfcheck import cpu_paths

        cp = cpu_paths(run=self_check)
    if st.json:
        from llmops.ui import print_json

        print_json({**report.model_dump(mode="json"), "cpu_paths": cp.model_dump() if cp else None})
        return
    from llmops.ui import out, table

    gpu_text = ", ".join(f"{g.name} ({g.memory_gib:g} GiB)" for g in report.gpus) or "none"
    out.print(
        f"Python {report.python} on {report.platform}; {report.cpu_cores} cores, {report.ram_gib} GiB RAM",
        markup=False,
    )
    out.print(f"GPUs: {gpu_text}; torch CUDA: {report.torch_cuda}", markup=False)  # names from nvidia-smi
    out.print(
        table(
            "capabilities",
            ["capability", "ready", "detail"],
            ([c.name, "yes" if c.ready else "no", c.detail] for c in report.capabilities),
        )
    )
    if report.engine_envs:
        out.print(
            table(
                "engine environments",
                ["engine", "version", "build", "where", "found"],
                (
                    [e.engine, f"{e.distribution or '-'} {e.version or ''}".strip(), e.build or "-",
                     e.where or "-", e.how or e.problem or "-"]
                    for e in report.engine_envs
                ),
            )
        )  # fmt: skip
    out.print(
        table(
            "packages",
            ["package", "version", "for"],
            ([p.name, p.version or "-", p.purpose] for p in report.packages),
        )
    )
    out.print(
        table(
            "API keys", ["variable", "set"], ([k, "yes" if v else "no"] for k, v in report.api_keys.items())
        )
    )
    if cp is not None:
        state_text = {None: "not checked yet", True: "on", False: "off (safe setting)"}[cp.extra_buffer_types]
        rows = [
            ["CPU", cp.cpu],
            ["instruction sets", ", ".join(cp.flags) or "none of AVX2 / AVX-512 / AMX"],
            ["extra buffer types (AMX, repacked weights)", state_text],
            ["why", cp.reason],
        ]
        for mode, tps in cp.prefill_tps.items():
            rows.append(
                [
                    f"self-check with them {mode}",
                    f"prefill {tps:,.0f} tok/s, decode {cp.decode_tps.get(mode, 0):,.0f} tok/s",
                ]
            )
        out.print(table("llama.cpp CPU paths", ["", ""], rows))
