"""The gateway's response cache: exact and semantic layers, in memory or in Redis (issue 13).

Nothing heavy is imported here; numpy, onnxruntime and redis load when a gateway with `cache:` starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmops.gateway.cache.config import CacheConfig
    from llmops.gateway.cache.store import CacheStore
    from llmops.gateway.stages import Stage, StageContext

MiB = 1024 * 1024


def open_cache_store(redis_url: str | None, config: CacheConfig | None = None) -> CacheStore:
    """Redis when the gateway has `redis:` (every replica shares hits), else this process's memory."""
    if redis_url:
        from llmops.gateway.cache.redis_store import RedisCacheStore

        return RedisCacheStore(redis_url)
    from llmops.gateway.cache.store import MemoryStore

    entries = config.max_entries if config and config.max_entries else 10_000
    mb = config.max_mb if config and config.max_mb else 256
    return MemoryStore(entries, mb * MiB)


def build_stage(ctx: StageContext) -> Stage | None:
    """The cache stage when the section or a route sets `cache:` (None otherwise)."""
    from llmops.gateway.cache.stage import CacheStage

    section = ctx.section.cache
    if section is None and all(r.cache is None for r in ctx.table.routes.values()):
        return None
    stage = CacheStage(section, ctx.table, open_cache_store(ctx.section.redis, section), ctx.metrics)
    if not any(rc.on for rc in stage.routes.values()):
        return None
    if stage.semantic:
        from llmops.gateway.cache.embed import model_files, shared_embedder

        model_files()  # a missing model package is an error at start-up, not at the first request
        stage.embedder = shared_embedder()
        stage.embedder.start_loading()
    return stage
