"""`llmops batch submit|status|results|cancel|list|resume`: batch jobs on OpenAI, Anthropic or any
OpenAI-compatible endpoint, one input format and one output format for all three."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmops.context import state
from llmops.options import DryRunOpt, ForceOpt, JsonOpt, OutputOpt, ProviderOpt

if TYPE_CHECKING:
    from llmops.batch import Run
    from llmops.batch.models import Job

app = typer.Typer(
    help="Submit, watch and collect batch jobs (openai, anthropic, or a local OpenAI-compatible server).",
    no_args_is_help=True,
)

JobIdArg = Annotated[str, typer.Argument(help="Job ID (or a unique prefix of it), from `llmops batch list`.")]
WaitOpt = Annotated[
    bool, typer.Option("--wait", "-w", help="Block until the job ends, with progress on stderr.")
]
PollOpt = Annotated[
    float, typer.Option("--poll-interval", min=0.01, help="Seconds between status polls (remote jobs).")
]
ResultsOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Also write the results to this file once the job ends."),
]


def _store():
    from llmops.batch import JobStore

    return JobStore()


def _say(text: str) -> None:
    from llmops.ui import err

    err.print(text, highlight=False, markup=False)


def _run(
    wait: bool,
    poll_s: float,
    output: Path | None = None,
    force: bool = False,
    credentials: str | None = None,
) -> Run:
    from llmops.batch import Run
    from llmops.ui import RichProgress

    return Run(
        wait=wait,
        poll_s=poll_s,
        output=output,
        force=force,
        credentials=credentials,
        progress=RichProgress(),
        notice=_say,
    )


def _finish(job: Job, as_json: bool, *, waited: bool, owner: int | None = None) -> None:
    """Print the job (one JSON document with --json); exit 1 when a waited-for job did not fully succeed."""
    from llmops.errors import OperationFailed
    from llmops.ui import err, out, print_json

    if as_json:
        print_json(job.summary())
    else:
        c = job.counts
        by = f" (run by pid {owner})" if owner else ""
        out.print(
            f"{job.id}  {job.state}{by}  {c.succeeded}/{c.total} succeeded, {c.failed} failed",
            highlight=False,
            markup=False,
        )
        if job.actual_usd is not None and job.ended:
            err.print(
                f"cost: ${job.actual_usd:.6f} ({job.usage.input_tokens} input + {job.usage.output_tokens} "
                "output tokens, from usage)",
                highlight=False,
            )
    if not waited:
        return
    if job.state == "interrupted":
        raise OperationFailed(
            f"batch job {job.id} stopped before the end" + (f": {job.error}" if job.error else ""),
            hint=f"`llmops batch resume {job.id} --wait` carries on",
        )
    if job.state != "completed" or job.counts.failed:
        raise OperationFailed(
            f"batch job {job.id} {job.state}: {job.counts.failed} of {job.counts.total} requests failed",
            hint=f"`llmops batch results {job.id}` has every line",
        )


@app.command("submit")
def submit(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help='JSONL: OpenAI batch lines, or plain {"prompt"} / {"messages"} lines.')
    ],
    provider: ProviderOpt = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model for lines that name none.")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="API base URL (local: any OpenAI-compatible …/v1). Credentials in it are never stored.",
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, help="Requests in flight (local backend).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0.1, help="Per-request timeout, seconds (local).")
    ] = None,
    max_retries: Annotated[
        int | None, typer.Option("--max-retries", min=0, help="Retries per request (local).")
    ] = None,
    backoff: Annotated[
        float | None,
        typer.Option("--backoff", min=0.0, help="First retry delay, seconds; doubles each retry."),
    ] = None,
    endpoint_wait: Annotated[
        float | None,
        typer.Option(
            "--endpoint-wait",
            min=0.0,
            help="Seconds to wait for a local endpoint that refuses connections before stopping "
            "(the job is kept for resume). Default 10.",
        ),
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="max_tokens for lines that set none.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A name to recognise the job by.")] = None,
    output: ResultsOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
    poll_interval: PollOpt = 30.0,
    no_split: Annotated[
        bool, typer.Option("--no-split", help="Refuse files over the provider's limits instead of splitting.")
    ] = False,
    new: Annotated[
        bool, typer.Option("--new", help="A new job even if one for this file is unfinished.")
    ] = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Validate FILE, estimate its cost, and submit it as one batch job (split over provider limits).

    Example: llmops batch submit prompts.jsonl --provider local --base-url http://127.0.0.1:8000/v1 --wait
    """
    import llmops.batch as batch
    from llmops.settings import dry_run_document
    from llmops.ui import err, print_json

    st = state(ctx, json=json)
    plan = batch.plan_submit(
        file,
        catalog=st.catalog(),
        workspace=st.workspace(),
        provider=provider,
        model=model,
        base_url=base_url,
        concurrency=concurrency,
        timeout=timeout,
        max_retries=max_retries,
        backoff=backoff,
        endpoint_wait=endpoint_wait,
        max_tokens=max_tokens,
        name=name,
        output=output,
        force=force,
        split=not no_split,
        new=new,
    )
    parsed = batch.validate(plan)
    est = batch.estimate(plan, parsed)
    usd = "unknown (model has no price in the provider profile)" if est.usd is None else f"${est.usd:.6f}"
    err.print(
        f"{est.requests} requests in {est.parts} batch(es); cost {usd} for ~{est.input_tokens} input + "
        f"~{est.output_tokens} output tokens (estimate: ~4 chars/token, outputs at max_tokens)",
        highlight=False,
    )
    if dry_run:
        if st.json:
            print_json(
                dry_run_document(
                    "batch submit",
                    plan.settings,
                    backend=plan.backend,
                    estimate=est.as_dict(),
                    credentials_in_base_url=plan.credentials is not None,
                )
            )
        else:
            for key, value, origin in plan.settings.rows():
                err.print(f"  {key} = {value}  ({origin})", highlight=False, markup=False)
        return
    job = batch.submit(
        plan,
        parsed,
        store=_store(),
        run=_run(wait, poll_interval, output, force, credentials=plan.credentials),
    )
    _finish(job, st.json, waited=wait)


@app.command("resume")
def resume(
    ctx: typer.Context,
    job_id: JobIdArg,
    wait: WaitOpt = False,
    poll_interval: PollOpt = 30.0,
    output: ResultsOpt = None,
    force: ForceOpt = False,
    json: JsonOpt = False,
) -> None:
    """Carry on with an interrupted job: only requests without a successful result are sent.

    Example: llmops batch resume batch_1a2b3c --wait -o results.jsonl
    """
    import llmops.batch as batch

    st = state(ctx, json=json)
    job = batch.resume(_store(), job_id, _run(wait, poll_interval, output, force))
    _finish(job, st.json, waited=wait)


@app.command("status")
def status(
    ctx: typer.Context,
    job_id: Annotated[str | None, typer.Argument(help="Job ID; all jobs when left out.")] = None,
    json: JsonOpt = False,
) -> None:
    """Where a job stands (asking the provider for remote jobs); every job when no ID is given.

    Example: llmops batch status batch_1a2b3c
    """
    import llmops.batch as batch
    from llmops.ui import out, print_json, table

    st = state(ctx, json=json)
    if job_id is None:
        list_(ctx, json=json)
        return
    job, problem, owner = batch.inspect(_store(), job_id)
    if st.json:
        print_json(
            {**job.summary(), "owner_pid": owner, "parts": [p.model_dump(mode="json") for p in job.parts]}
        )
    else:
        _finish(job, False, waited=False, owner=owner)
        if job.parts:
            out.print(
                table(
                    None,
                    ["part", "remote id", "status", "succeeded", "failed", "size"],
                    (
                        [p.index + 1, p.remote_id, p.status, p.counts.succeeded, p.counts.failed, p.size]
                        for p in job.parts
                    ),
                )
            )
    if problem is not None:  # the stored record was shown; say why it may be behind
        raise problem


@app.command("list")
def list_(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Every job in the job store, oldest first.

    Example: llmops batch list --json
    """
    import llmops.batch as batch
    from llmops.ui import out, print_json, table

    st = state(ctx, json=json)
    found = batch.list_jobs(_store())
    if st.json:
        print_json([j.summary() for j in found])
        return
    jobs_table = table(
        "batch jobs",
        ["id", "name", "backend", "state", "done", "failed", "input"],
        (
            [j.id, j.name, j.backend, j.state, f"{j.counts.done}/{j.counts.total}", j.counts.failed, j.input]
            for j in found
        ),
    )
    jobs_table.columns[0].no_wrap = True  # an ID cut short is no use to copy
    out.print(jobs_table)


@app.command("results")
def results(ctx: typer.Context, job_id: JobIdArg, output: OutputOpt = None, force: ForceOpt = False) -> None:
    """The results of an ended job, OpenAI batch output lines in input order, on stdout or in a file.

    Example: llmops batch results batch_1a2b3c -o results.jsonl
    """
    import shutil
    import sys

    import llmops.batch as batch

    state(ctx)
    if output is None:
        _, path = batch.results_path(_store(), job_id)
        with path.open("rb") as fh:
            shutil.copyfileobj(fh, sys.stdout.buffer)
        return
    job = batch.write_results(_store(), job_id, output, force=force)
    _say(f"{job.counts.total} results written to {output}")


@app.command("cancel")
def cancel(ctx: typer.Context, job_id: JobIdArg, json: JsonOpt = False) -> None:
    """Cancel a job: requests already finished keep their results, the rest are marked cancelled.

    Example: llmops batch cancel batch_1a2b3c
    """
    import llmops.batch as batch

    st = state(ctx, json=json)
    _finish(batch.cancel(_store(), job_id), st.json, waited=False)
