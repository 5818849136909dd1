"""The labelled sets in tests/data, read once, and how the semantic layer scores them (shared by the tests
and benchmarks/bench_gateway_cache.py, so both measure what the cache stage decides)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"
# Every labelled set: tuned-on, held out (written after the check was tuned), multi-turn near misses.
SETS = ("semantic_pairs.jsonl", "semantic_pairs_heldout.jsonl", "semantic_pairs_multiturn.jsonl")


def read_jsonl(name: str) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def turns(messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] != "system"]


@dataclass
class Pair:
    """One labelled pair as the cache stage sees it: the joined conversations' similarity (what the index
    searches by) and each turn's own vector (None for a turn longer than the embedding reads)."""

    row: dict[str, Any]
    similarity: float
    a: list[str]
    b: list[str]
    a_vectors: list[Any]
    b_vectors: list[Any]

    @property
    def near_miss(self) -> bool:
        return self.row["kind"] == "near_miss"

    def hit(self, threshold: float, verify: bool = True, by_turn: bool = True) -> bool:
        """Would the stage answer b from a's entry? (threshold, then the text rules, then turn by turn)"""
        from llmops.gateway.cache.sameness import conversation_difference, turns_difference

        if self.similarity < threshold:
            return False
        if verify and conversation_difference(self.a, self.b) is not None:
            return False
        if by_turn:
            why, _ = turns_difference(self.a, self.b, self.a_vectors, self.b_vectors, threshold)
            return why is None
        return True


def embed_pairs(embedder: Any, rows: list[dict[str, Any]]) -> list[Pair]:
    from llmops.gateway.cache.sameness import LONG_TURN_CHARS

    joined = embedder.embed_sync(
        ["\n".join(turns(r["a"])) for r in rows] + ["\n".join(turns(r["b"])) for r in rows]
    )
    every_turn = sorted(
        {t for r in rows for side in ("a", "b") for t in turns(r[side]) if len(t) <= LONG_TURN_CHARS}
    )
    vectors = dict(zip(every_turn, embedder.embed_sync(every_turn), strict=True))
    pairs = []
    for i, r in enumerate(rows):
        a, b = turns(r["a"]), turns(r["b"])
        pairs.append(
            Pair(
                r,
                float(joined[i] @ joined[len(rows) + i]),
                a,
                b,
                [vectors.get(t) for t in a],
                [vectors.get(t) for t in b],
            )
        )
    return pairs


def tally(pairs: list[Pair], threshold: float, verify: bool = True, by_turn: bool = True) -> dict[str, Any]:
    """Paraphrase hits and wrong hits (near misses answered) at one threshold."""
    para = [p for p in pairs if not p.near_miss]
    near = [p for p in pairs if p.near_miss]
    wrong = [p for p in near if p.hit(threshold, verify, by_turn)]
    return {
        "hits": sum(p.hit(threshold, verify, by_turn) for p in para),
        "paraphrases": len(para),
        "wrong": len(wrong),
        "near_misses": len(near),
        "wrong_texts": [f"{p.row['category']}: {p.a[0][:60]} | {p.b[0][:60]}" for p in wrong],
    }
