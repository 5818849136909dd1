"""Client keys: loaded once as SHA-256 digests, compared in constant time, known to the rest only by name."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

from llmops.errors import UsageError
from llmops.gateway.config import KeyConfig
from llmops.gateway.errors import GatewayError


@dataclass(frozen=True)
class ClientKey:
    name: str
    digest: bytes
    config: KeyConfig
    expires_at: float | None = None  # epoch seconds (a run-time key's expiry, or a rotated key's grace)

    def may_use(self, route: str) -> bool:
        return self.config.routes is None or route in self.config.routes


def digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def load_keys(configs: list[KeyConfig], environ: dict[str, str] | None = None) -> list[ClientKey]:
    """Every configured key with its digest; a key whose variable is unset is an error now, not later."""
    env = os.environ if environ is None else environ
    keys = []
    for k in configs:
        if k.key_env:
            value = env.get(k.key_env)
            if not value:
                raise UsageError(
                    f"gateway key '{k.name}': environment variable {k.key_env} is not set",
                    hint=f"export {k.key_env}=... (or store the hash: key_sha256)",
                )
            keys.append(ClientKey(k.name, digest(value), k))
        else:
            keys.append(ClientKey(k.name, bytes.fromhex(str(k.key_sha256)), k))
    return keys


def presented_key(headers: dict[str, str]) -> str | None:
    """The key a client sent: `Authorization: Bearer K` (OpenAI SDK) or `x-api-key: K` (Anthropic SDK)."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return headers.get("x-api-key") or None


class Authenticator:
    """Keys by digest: one dict lookup per request, however many keys there are.

    The lookup is by the SHA-256 of the presented value, so its timing can at most tell an attacker
    something about a digest, never about a key (finding a value with a chosen digest prefix is
    preimage work); configuration and run-time keys are looked up alike."""

    def __init__(self, keys: list[ClientKey], last_used: dict[str, float] | None = None) -> None:
        self.keys = keys
        self.by_digest = {k.digest: k for k in keys}
        self.last_used = {} if last_used is None else last_used  # key name -> epoch s (`keys list`)

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def check(self, headers: dict[str, str]) -> ClientKey | None:
        """The key's record, None when no keys are configured; 401 for a missing, unknown or expired key."""
        if not self.by_digest:
            return None
        value = presented_key(headers)
        if value is None:
            raise GatewayError(401, "missing API key: send Authorization: Bearer <key> or x-api-key")
        found = self.by_digest.get(digest(value))
        if found is None:
            raise GatewayError(401, "invalid API key", code="invalid_api_key")
        now = time.time()
        if found.expires_at is not None and now >= found.expires_at:
            raise GatewayError(401, f"key '{found.name}' has expired", code="expired_api_key")
        self.last_used[found.name] = now
        return found
