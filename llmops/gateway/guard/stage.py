"""The guard stage: screen each request before routing, and each reply before the client reads it.

`block` answers 400 in the client's API error shape, naming the rule; `log` only counts
(`llmops_gateway_guard_matches_total{route,rule,action}`). Neither logs the text that matched: a
prompt stays out of logs, a leaked key most of all. Streamed replies go out as they arrive, so their
leak check runs once the stream has ended and can only count (action `log`); non-streamed replies are
withheld when a `block` leak rule matches. A reply that matched a leak rule is never cached.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from llmops.gateway.guard.config import GuardConfig, effective
from llmops.gateway.guard.screen import Match, Screen
from llmops.gateway.stages import Call, Outcome, Reply, Stage

#: Set in `call.notes` when a reply matched a leak rule: the cache stage (after this one) never stores it.
LEAK_NOTE = "guard.leak"

if TYPE_CHECKING:
    from llmops.gateway.metrics import Metrics
    from llmops.gateway.table import RouteTable


class GuardStage(Stage):
    name = "guard"

    def __init__(
        self,
        section: GuardConfig | None,
        table: RouteTable,
        metrics: Metrics | None,
        environ: dict[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        secrets = {
            env[d.api_key_env]
            for r in table.routes.values()
            for d in r.deployments
            if d.api_key_env and env.get(d.api_key_env)
        }
        self.screen = Screen(secrets=secrets)
        self.metrics = metrics
        self.configs = {name: effective(section, r.guard) for name, r in table.routes.items()}
        self._off = GuardConfig(mode="off", response="off")

    def config(self, route: str) -> GuardConfig:
        return self.configs.get(route, self._off)

    def _action(self, cfg: GuardConfig, rule: str, default: str | None) -> str:
        return cfg.rules.get(rule, default or "off")

    def _count(self, route: str, rule: str, action: str) -> None:
        if self.metrics is not None:
            self.metrics.guard_matches.labels(route, rule, action).inc()

    def _judge(self, call: Call, matches: list[Match], default: str | None) -> Reply | None:
        cfg = self.config(call.route.name)
        blocked: Match | None = None
        for m in matches:
            action = self._action(cfg, m.rule, default)
            if action == "off":
                continue
            self._count(call.route.name, m.rule, action)
            if m.where == "response":
                call.notes[LEAK_NOTE] = True  # the cache will not keep (and replay) this reply
            if action == "block" and blocked is None:
                blocked = m
        if blocked is None:
            return None
        what = "request" if blocked.where != "response" else "reply"
        return Reply.error(
            400,
            "invalid_request_error",
            f"{what} blocked by the gateway's guard rule '{blocked.rule}' ({blocked.where})",
            headers={"x-llmops-guard": blocked.rule},
        )

    async def on_request(self, call: Call) -> Reply | None:
        cfg = self.config(call.route.name)
        if cfg.response != "off" and call.stream:
            call.capture = True  # a streamed reply is checked (and counted) once it is complete
        if cfg.mode == "off" and not any(a != "off" for a in cfg.rules.values()):
            return None
        return self._judge(call, self.screen.check_request(call.api, call.body), cfg.mode)

    async def on_response(self, call: Call, response: dict[str, Any]) -> Reply | None:
        cfg = self.config(call.route.name)
        if cfg.response == "off":
            return None
        return self._judge(call, self.screen.check_response(call.api, response), cfg.response)

    async def on_complete(self, call: Call, outcome: Outcome) -> None:
        cfg = self.config(call.route.name)
        if not call.stream or cfg.response == "off" or outcome.response is None or outcome.from_stage:
            return
        for m in self.screen.check_response(call.api, outcome.response):
            if self._action(cfg, m.rule, cfg.response) != "off":
                self._count(call.route.name, m.rule, "log")
                call.notes[LEAK_NOTE] = True
