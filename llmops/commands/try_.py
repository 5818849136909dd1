"""`llmops try [MODEL|ROUTE] "prompt"`: stream one answer (or compare settings) and show what it cost."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from llmops.context import state
from llmops.options import DryRunOpt, JsonOpt, NodeOpt, ProviderOpt, TargetOpt, VerboseOpt
from llmops.sampling.presets import presets_help

Opt = typer.Option


def try_(
    ctx: typer.Context,
    first: Annotated[
        str,
        typer.Argument(
            help="MODEL (a model profile, a provider's model, or a gateway route) then PROMPT; "
            "or only the PROMPT for the workspace's model. PROMPT '-' reads standard input.",
            show_default=False,
            metavar="[MODEL|ROUTE]",
        ),
    ],
    prompt: Annotated[str | None, typer.Argument(help="The prompt.", show_default=False)] = None,
    target: TargetOpt = None,
    system: Annotated[str | None, Opt("--system", help="System prompt.")] = None,
    preset: Annotated[str | None, Opt("--preset", help=f"A set from the guide. {presets_help()}.")] = None,
    temperature: Annotated[
        float | None, Opt("--temperature", help=">= 0; 0 picks the likeliest token.")
    ] = None,
    top_p: Annotated[float | None, Opt("--top-p", help="In (0, 1]: nucleus sampling.")] = None,
    top_k: Annotated[int | None, Opt("--top-k", help=">= 1 (vLLM, llama.cpp, Anthropic).")] = None,
    frequency_penalty: Annotated[float | None, Opt("--frequency-penalty", help="In [-2, 2].")] = None,
    presence_penalty: Annotated[float | None, Opt("--presence-penalty", help="In [-2, 2].")] = None,
    repetition_penalty: Annotated[
        float | None, Opt("--repetition-penalty", help="> 0, 1 = off (vLLM, llama.cpp).")
    ] = None,
    stop: Annotated[list[str] | None, Opt("--stop", help="A stop sequence (repeat for more).")] = None,
    seed: Annotated[
        int | None, Opt("--seed", help="Sampler seed; with temperature 0, repeatable answers.")
    ] = None,
    max_tokens: Annotated[
        int | None, Opt("--max-tokens", help="Longest answer in tokens (default 256).")
    ] = None,
    n: Annotated[int | None, Opt("--n", help="Answers to the prompt (sent one after another).")] = None,
    logprobs: Annotated[
        int | None,
        Opt(
            "--logprobs", help="Colour tokens by probability and show confidence; K > 0 lists K alternatives."
        ),
    ] = None,
    compare: Annotated[
        str | None, Opt("--compare", help="PARAM=V1,V2,...: the same prompt with each value, side by side.")
    ] = None,
    repeat: Annotated[int | None, Opt("--repeat", help="Answers per --compare value (default 1).")] = None,
    timeout: Annotated[
        float | None, Opt("--timeout", help="Seconds for a whole answer (default 120).")
    ] = None,
    provider: ProviderOpt = None,
    node: NodeOpt = None,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Send a prompt and watch the answer stream: time to first token, tokens/s, finish reason, cost.

    Example: llmops try smollm2 "Name three colours" --compare temperature=0,1.2 --repeat 3
    """
    from llmops.commands._try_view import TerminalView, finish, print_dry_run, print_result, result_json
    from llmops.tryout import TryFlags, resolve, try_prompt
    from llmops.ui import RichProgress, print_json

    st = state(ctx, json=json, verbose=verbose)
    model_ref, text = (first, prompt) if prompt is not None else (None, first)
    if text == "-":
        text = sys.stdin.read()
    sampling: dict[str, Any] = {
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k,
        "frequency_penalty": frequency_penalty,
        "presence_penalty": presence_penalty,
        "repetition_penalty": repetition_penalty,
        "stop": stop or None,
        "seed": seed,
        "max_tokens": max_tokens,
    }
    flags = TryFlags(
        model_ref=model_ref,
        prompt=text,
        target=target,
        system=system,
        provider=provider,
        node=node,
        preset=preset,
        sampling={k: v for k, v in sampling.items() if v is not None},
        n=n,
        logprobs=logprobs,
        compare=compare,
        repeat=repeat,
        timeout=timeout,
    )
    plan = resolve(flags, st.workspace(), st.catalog())
    if dry_run:
        return print_dry_run(plan, as_json=st.json)
    if st.json:
        result = try_prompt(plan)
    else:
        with TerminalView(plan) as view:
            result = try_prompt(plan, view, serve_progress=RichProgress())
    print_json(result_json(plan, result)) if st.json else print_result(plan, result)
    finish(result)  # exit 130 after Ctrl-C, 1 when an answer failed
