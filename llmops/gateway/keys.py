"""Client keys made at run time: create, list, revoke, rotate; stored as SHA-256 hashes only.

With `redis:` the records live in one Redis hash and every change is announced on the gateway's events
channel, so every replica rebuilds its key table within a second (each also re-reads the hash whenever
it reconnects). Without redis they live in `keys.json` beside the usage log, written whole through the
project's staged writer (beside, then swapped in). Keys from the configuration file keep working beside
them; a name is either a configuration key or a run-time key, never both.

A key's value is made here, returned once to the caller that created it, and never stored or logged.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

from pydantic import Field, PositiveFloat, PositiveInt

from llmops.errors import NotFoundError, UsageError
from llmops.gateway.auth import Authenticator, ClientKey, digest
from llmops.gateway.config import KeyConfig, Sha256
from llmops.profiles.schema import Name, StrictModel

KEY_PREFIX = "sk-llmops-"
KEYS_FILE = "keys.json"


class KeyRecord(StrictModel):
    """One run-time key as stored (a hash, never the value)."""

    name: Name
    sha256: Sha256
    routes: list[Name] | None = None
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    budget_usd: PositiveFloat | None = None
    created_at: float
    expires_at: float | None = Field(default=None, description="epoch seconds; none: never")
    previous_sha256: Sha256 | None = Field(default=None, description="the value before a rotation")
    previous_until: float | None = Field(default=None, description="the previous value works until then")

    def config(self) -> KeyConfig:
        return KeyConfig(
            name=self.name,
            key_sha256=self.sha256,
            routes=self.routes,
            rpm=self.rpm,
            tpm=self.tpm,
            budget_usd=self.budget_usd,
        )

    def client_keys(self, now: float) -> list[ClientKey]:
        """The key, and its previous value while a rotation's grace lasts (same name: same limits)."""
        cfg = self.config()
        out = [ClientKey(self.name, bytes.fromhex(self.sha256), cfg, self.expires_at)]
        if self.previous_sha256 and self.previous_until and self.previous_until > now:
            until = (
                self.previous_until if self.expires_at is None else min(self.previous_until, self.expires_at)
            )
            out.append(ClientKey(self.name, bytes.fromhex(self.previous_sha256), cfg, until))
        return out


class KeysFile(StrictModel):
    """`keys.json` beside the usage log (gateways without redis)."""

    keys: list[KeyRecord] = Field(default_factory=list)


def _duration(flag: str, text: str) -> float:
    from llmops.gateway.usage import duration_s

    seconds = 0.0 if text.strip() == "0" else duration_s(text)
    if seconds is None:
        raise UsageError(f"{flag} {text!r} is not a duration", hint="use 90s, 10m, 12h or 30d")
    return seconds


def expiry_s(text: str | None) -> float | None:
    """`--expires 30d` in seconds from now (None: never)."""
    return None if text is None else _duration("--expires", text) or None


def grace_s(text: str) -> float:
    """`--grace 10m` in seconds (0: the old value stops at once)."""
    return _duration("--grace", text)


def when(epoch: float | None) -> str:
    """An epoch time for a table: '2026-12-07 04:05:09 UTC', or '-'."""
    if epoch is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class FileKeyStore:
    """One process's keys in a JSON file, each change written whole (staged: beside, then swapped in)."""

    where = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = asyncio.Lock()  # read-change-write of the whole file: one change at a time

    def _read(self) -> dict[str, KeyRecord]:
        if not self.path.is_file():
            return {}
        doc = KeysFile.model_validate_json(self.path.read_bytes())
        return {r.name: r for r in doc.keys}

    def _write(self, records: dict[str, KeyRecord]) -> None:
        from llmops.output import write_output_file

        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = KeysFile(keys=sorted(records.values(), key=lambda r: r.name))
        write_output_file(self.path, doc.model_dump_json(indent=2) + "\n", force=True)

    async def load(self) -> dict[str, KeyRecord]:
        return await asyncio.to_thread(self._read)

    async def put(self, record: KeyRecord, *, new: bool) -> bool:
        async with self.lock:
            records = await self.load()
            if new and record.name in records:
                return False
            records[record.name] = record
            await asyncio.to_thread(self._write, records)
            return True

    async def delete(self, name: str) -> bool:
        async with self.lock:
            records = await self.load()
            if records.pop(name, None) is None:
                return False
            await asyncio.to_thread(self._write, records)
            return True

    def describe(self) -> str:
        return str(self.path)


class RedisKeyStore:
    """Keys in one Redis hash shared by every replica (field: name, value: the record as JSON)."""

    where = "redis"

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.hash = f"{prefix}:keys"

    async def load(self) -> dict[str, KeyRecord]:
        raw = await self.redis.hgetall(self.hash)
        return {name: KeyRecord.model_validate_json(v) for name, v in raw.items()}

    async def put(self, record: KeyRecord, *, new: bool) -> bool:
        value = record.model_dump_json()
        if new:
            return bool(await self.redis.hsetnx(self.hash, record.name, value))
        await self.redis.hset(self.hash, record.name, value)
        return True

    async def delete(self, name: str) -> bool:
        return bool(await self.redis.hdel(self.hash, name))

    def describe(self) -> str:
        return "redis"


def open_key_store(store: Any, usage_path: Path) -> FileKeyStore | RedisKeyStore:
    redis = getattr(store, "redis", None)
    if redis is not None:
        return RedisKeyStore(redis, store.prefix)
    return FileKeyStore(usage_path.parent / KEYS_FILE)


class KeyAdmin:
    """The gateway's key table: configuration keys plus run-time ones; rebuilt on every change."""

    def __init__(
        self, gateway: Any, store: FileKeyStore | RedisKeyStore, config_keys: list[ClientKey]
    ) -> None:
        self.gw = gateway
        self.store = store
        self.config_keys = config_keys
        self.records: dict[str, KeyRecord] = {}
        self.last_used: dict[str, float] = gateway.auth.last_used

    async def start(self) -> None:
        await self.refresh()

    def set_config(self, config_keys: list[ClientKey]) -> None:
        """A reload changed the configuration's keys."""
        self.config_keys = config_keys
        self._rebuild()

    async def refresh(self) -> None:
        self.records = await self.store.load()
        self._rebuild()

    def _rebuild(self) -> None:
        now = time.time()
        config_names = {k.name for k in self.config_keys}
        keys = list(self.config_keys)
        for r in self.records.values():
            if r.name not in config_names:  # a configuration key of the same name wins
                keys += r.client_keys(now)
        self.gw.auth = Authenticator(keys, self.last_used)  # one assignment: requests see old or new

    async def _changed(self, op: str) -> None:
        self.gw.metrics.key_operations.labels(op).inc()
        await self.refresh()
        if self.gw.reloader is not None:
            await self.gw.reloader.announce("keys")

    def _check_routes(self, routes: list[str] | None) -> None:
        table = self.gw.live.table
        for r in routes or []:
            table.lookup(r)  # NotFoundError naming what is close

    async def create(
        self,
        name: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
        routes: list[str] | None = None,
        expires_in_s: float | None = None,
    ) -> dict[str, Any]:
        """A new key: its value is in the answer, and nowhere else ever again."""
        if any(k.name == name for k in self.config_keys):
            raise UsageError(f"key '{name}' is in the configuration file", hint="choose another name")
        self._check_routes(routes)
        value = new_key()
        now = time.time()
        record = KeyRecord(
            name=name,
            sha256=digest(value).hex(),
            routes=routes,
            rpm=rpm,
            tpm=tpm,
            budget_usd=budget_usd,
            created_at=now,
            expires_at=now + expires_in_s if expires_in_s else None,
        )
        if not await self.store.put(record, new=True):
            raise UsageError(
                f"key '{name}' exists", hint=f"`llmops gateway keys rotate {name}` gives it a new value"
            )
        await self._changed("create")
        return {**self._describe(record, 0.0), "key": value}

    async def revoke(self, name: str) -> dict[str, Any]:
        if not await self.store.delete(name):
            self._unknown(name)
        await self._changed("revoke")
        return {"name": name, "revoked": True}

    async def rotate(self, name: str, grace_s: float) -> dict[str, Any]:
        """A new value; the old one keeps working for `grace_s` seconds (0: refused at once)."""
        records = await self.store.load()
        old = records.get(name)
        if old is None:
            self._unknown(name)
        value = new_key()
        now = time.time()
        record = old.model_copy(
            update={
                "sha256": digest(value).hex(),
                "previous_sha256": old.sha256 if grace_s > 0 else None,
                "previous_until": now + grace_s if grace_s > 0 else None,
            }
        )
        await self.store.put(record, new=False)
        await self._changed("rotate")
        return {**self._describe(record, await self._spent(name)), "key": value}

    def _unknown(self, name: str) -> None:
        if any(k.name == name for k in self.config_keys):
            raise UsageError(
                f"key '{name}' comes from the configuration file",
                hint="remove or change it there, then `llmops gateway reload`",
            )
        raise NotFoundError(f"no run-time key '{name}'", hint="`llmops gateway keys list` shows them")

    async def _spent(self, name: str) -> float:
        return round(await self.gw.store.spend(f"key:{name}"), 6)

    def _describe(self, r: KeyRecord, spent: float) -> dict[str, Any]:
        rotating = r.previous_until if r.previous_sha256 and (r.previous_until or 0) > time.time() else None
        return {
            "name": r.name,
            "source": "runtime",
            "routes": r.routes,
            "rpm": r.rpm,
            "tpm": r.tpm,
            "budget_usd": r.budget_usd,
            "spent_usd": spent,
            "created_at": r.created_at,
            "expires_at": r.expires_at,
            "previous_valid_until": rotating,
            "last_used": self.last_used.get(r.name),
        }

    async def list(self) -> list[dict[str, Any]]:
        """Every key by name, limits, spend, last use (on this replica) and expiry; never a value."""
        await self.refresh()
        rows = []
        for k in self.config_keys:
            c = k.config
            rows.append(
                {
                    "name": k.name,
                    "source": "config",
                    "routes": c.routes,
                    "rpm": c.rpm,
                    "tpm": c.tpm,
                    "budget_usd": c.budget_usd,
                    "spent_usd": await self._spent(k.name),
                    "created_at": None,
                    "expires_at": None,
                    "previous_valid_until": None,
                    "last_used": self.last_used.get(k.name),
                }
            )
        config_names = {k.name for k in self.config_keys}
        for r in sorted(self.records.values(), key=lambda r: r.name):
            if r.name not in config_names:
                rows.append(self._describe(r, await self._spent(r.name)))
        return rows
