"""Per-key RPM, TPM and budget, and per-deployment RPM/TPM, over sliding 60-second windows.

Tokens are estimated before the call (about 4 characters a token in, max_tokens out) and corrected to
what the upstream reported after it, so a key's TPM window holds real usage once requests finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops.batch.cost import estimate_tokens
from llmops.gateway.auth import ClientKey
from llmops.gateway.errors import GatewayError
from llmops.gateway.metrics import Metrics
from llmops.gateway.store import Store, Window
from llmops.gateway.table import Deployment

WINDOW_S = 60.0


def estimate(body: dict[str, Any]) -> int:
    """Tokens a request may use: prompt estimate plus its max_tokens (256 when unset)."""
    inp, out = estimate_tokens(body)
    system = body.get("system")
    if isinstance(system, str):
        inp += len(system) // 4
    return inp + out


@dataclass
class Held:
    """What a request holds in the windows, to correct once its real usage is known."""

    member: str
    estimate: int
    key_tpm: Window | None = None
    dep_tpm: Window | None = None


class Limiter:
    def __init__(self, store: Store, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics

    async def admit_key(self, key: ClientKey, member: str, tokens: int) -> tuple[Held, bool]:
        """Take a key's RPM/TPM; (held, over_budget). Raises 429 with Retry-After when a window is full."""
        c = key.config
        windows = []
        if c.rpm:
            windows.append(Window(f"key:{key.name}:rpm", 1, c.rpm, WINDOW_S))
        tpm = Window(f"key:{key.name}:tpm", tokens, c.tpm, WINDOW_S) if c.tpm else None
        if tpm:
            windows.append(tpm)
        budget = (f"key:{key.name}", c.budget_usd) if c.budget_usd else None
        held = Held(member, tokens, key_tpm=tpm)
        if not windows and not budget:
            return held, False
        adm = await self.store.admit(windows, member, budget)
        if adm.ok:
            return held, False
        if adm.refused == len(windows):  # the budget
            if c.budget_route:
                adm = await self.store.admit(windows, member, None)
                if adm.ok:
                    return held, True
            else:
                self.metrics.rejections.labels(key.name, "budget").inc()
                raise GatewayError(
                    402, f"key '{key.name}' has spent its budget of ${c.budget_usd:g}", code="budget_exceeded"
                )
        which = windows[adm.refused].key.rsplit(":", 1)[-1]
        self.metrics.rejections.labels(key.name, which).inc()
        wait = max(1, int(adm.retry_after_s + 0.999))
        if which == "tpm" and tokens > (c.tpm or 0):
            msg = f"this request needs about {tokens} tokens, more than key '{key.name}' may use per minute"
        else:
            msg = f"key '{key.name}' is over its {which.upper()} limit; retry after {wait} s"
        raise GatewayError(429, msg, code=f"{which}_exceeded", headers={"retry-after": str(wait)})

    async def admit_deployment(self, dep: Deployment, held: Held) -> bool:
        """Whether a deployment's own RPM/TPM has room for this request (taken when it has)."""
        windows = []
        if dep.rpm:
            windows.append(Window(f"dep:{dep.key}:rpm", 1, dep.rpm, WINDOW_S))
        tpm = Window(f"dep:{dep.key}:tpm", held.estimate, dep.tpm, WINDOW_S) if dep.tpm else None
        if tpm:
            windows.append(tpm)
        if not windows:
            return True
        adm = await self.store.admit(windows, held.member, None)
        if adm.ok:
            held.dep_tpm = tpm
        return adm.ok

    async def settle(self, key: ClientKey | None, held: Held, tokens: int, cost: float) -> None:
        """Correct the token windows to real usage and add the cost to the key's spend."""
        for w in (held.key_tpm, held.dep_tpm):
            if w is not None and tokens != held.estimate:
                await self.store.adjust(
                    Window(w.key, tokens, w.limit, w.window_s), held.member, held.estimate
                )
        if key is not None and key.config.budget_usd and cost > 0:
            await self.store.add_spend(f"key:{key.name}", cost)
