"""The request path's pluggable stages, and the objects that travel through them.

    auth -> limits -> guard -> cache lookup -> route -> call -> relay -> accounting

Auth, limits, route, call, relay and accounting are the gateway's own. `guard` and `cache` are slots
(issue 13): each holds a `Stage`, a no-op until configured. A stage sees one `Call` and may answer it:

    class MyStage(Stage):
        async def on_request(self, call: Call) -> Reply | None:
            ...                       # None: go on; a Reply: answer with it (a block, a cache hit)
        async def on_response(self, call: Call, response: dict) -> Reply | None:
            ...                       # non-streamed 2xx reply, before it is sent; a Reply replaces it
        async def on_complete(self, call: Call, outcome: Outcome) -> None:
            ...                       # after the client got everything (store, count)

`Reply.completion(doc)` answers with a complete response in the client's own API format (an OpenAI
chat.completion / text_completion, or an Anthropic message); when the client asked for a stream the
gateway replays it as a well-formed stream (usage and final event included). A stage that needs the whole
response of a streamed miss sets `call.capture = True` in on_request; `outcome.response` is then the
assembled response in the client's format, set only when `outcome.complete` (2xx, stream ended normally).

Slots are filled by `build_stage(ctx: StageContext) -> Stage | None` in `llmops.gateway.guard` and
`llmops.gateway.cache` when those modules exist (None: not configured).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from llmops.gateway.config import GatewaySection
    from llmops.gateway.metrics import Metrics
    from llmops.gateway.store import Store
    from llmops.gateway.table import Route, RouteTable

# /v1/chat/completions, /v1/completions, /v1/messages, /v1/embeddings, /v1/responses
Api = Literal["chat", "completions", "messages", "embeddings", "responses"]


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # part of input_tokens the upstream served from its prompt cache
    reported: bool = False  # False: estimated by the gateway (the upstream gave no usage)


@dataclass(slots=True)
class Reply:
    """An answer a stage gives instead of calling upstream.

    Either a complete response document in the client's format (`doc`, replayed as a stream when the
    client asked for one) or an error (`status` >= 400 with `error_type`/`message`, rendered in the
    client's API error shape).
    """

    status: int = 200
    doc: dict[str, Any] | None = None
    error_type: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def completion(cls, doc: dict[str, Any], headers: dict[str, str] | None = None) -> Reply:
        return cls(200, doc=doc, headers=dict(headers or {}))

    @classmethod
    def error(
        cls, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> Reply:
        return cls(status, error_type=error_type, message=message, headers=dict(headers or {}))


@dataclass(slots=True)
class Call:
    """One client request as it moves through the stages."""

    api: Api
    body: dict[str, Any]  # the client's request, parsed; "model" is the route name asked for
    route: Route  # the route the client asked for (after aliases), before any fallback
    stream: bool
    headers: dict[str, str]  # request headers, lower-case names
    key_name: str | None = None  # the client key's name (None when no keys are configured)
    request_id: str = ""
    t_start: float = 0.0  # perf_counter() when the request arrived
    capture: bool = False  # a stage wants outcome.response assembled for streamed replies
    response_headers: dict[str, str] = field(default_factory=dict)  # stages add theirs (x-llmops-cache)
    notes: dict[str, Any] = field(default_factory=dict)  # scratch space for stages, by stage name


@dataclass(slots=True)
class Outcome:
    """What happened, once the client has the whole reply."""

    status: int
    complete: bool  # 2xx and (for streams) the upstream's final event arrived
    route: str | None = None  # the route that answered, after fallbacks
    deployment: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    response: dict[str, Any] | None = None  # assembled reply in the client's format (see module doc)
    error: str | None = None  # failure reason: connect, timeout, status_5xx, stream_cut, stall, ...
    from_stage: str | None = None  # the stage that answered (a cache hit), else None
    ttft_s: float | None = None
    duration_s: float = 0.0


class Stage:
    """Base of a pluggable stage: every hook is a no-op."""

    name = "noop"

    async def on_request(self, call: Call) -> Reply | None:
        return None

    async def on_response(self, call: Call, response: dict[str, Any]) -> Reply | None:
        return None

    async def on_complete(self, call: Call, outcome: Outcome) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass
class StageContext:
    """What a slot's `build_stage` gets: the config, the route table, shared state and metrics."""

    section: GatewaySection
    table: RouteTable
    store: Store
    metrics: Metrics
    environ: dict[str, str] | None = None  # the gateway's environment (the guard compares provider keys)


SLOTS = {"guard": "llmops.gateway.guard", "cache": "llmops.gateway.cache"}


def load_slot(slot: str, ctx: StageContext) -> Stage:
    """The stage for a slot, or a no-op one when the slot's module is absent or not configured."""
    from llmops.errors import UsageError

    module = SLOTS[slot]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        configured = getattr(ctx.section, slot) is not None or any(
            getattr(r, slot) is not None for r in ctx.table.routes.values()
        )
        if configured:
            raise UsageError(
                f"gateway.{slot} is set but this llmops has no {slot} stage",
                hint=f"remove {slot}: from the gateway section, or upgrade llmops",
            ) from None
        return Stage()
    stage = mod.build_stage(ctx)
    return stage if stage is not None else Stage()
