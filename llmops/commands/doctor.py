"""`llmops doctor`: what this machine has for each capability."""

from __future__ import annotations

import typer

from llmops.context import state
from llmops.options import JsonOpt


def doctor(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Check Python, GPUs, engines, libraries, SDKs and which API keys are set (never their values).

    Example: llmops doctor --json
    """
    from llmops.doctor import collect

    st = state(ctx, json=json)
    providers = st.catalog().all("provider")
    report = collect(sorted({p.profile.api_key_env for p in providers if p.profile.api_key_env}))
    if st.json:
        from llmops.ui import print_json

        print_json(report)
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
