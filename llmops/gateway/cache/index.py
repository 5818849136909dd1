"""A flat vector index for one semantic partition: exact cosine search over unit vectors with numpy.

Partitions are small (one route, one parameter set, one system prompt, one turn structure), so a flat
matrix product beats any approximate index here: 10,000 rows of 384 floats are searched in well under
a millisecond. Rows are appended; removed rows are masked and compacted when they pile up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

DIM = 384


@dataclass(frozen=True, slots=True)
class Candidate:
    similarity: float
    key: str
    texts: tuple[str, ...]


class VectorIndex:
    __slots__ = ("_alive", "_expires", "_keys", "_matrix", "_rows", "_texts", "_used")

    def __init__(self, dim: int = DIM) -> None:
        self._matrix = np.zeros((16, dim), dtype=np.float32)
        self._keys: list[str | None] = []
        self._texts: list[tuple[str, ...]] = []
        self._expires: list[float] = []
        self._alive = np.zeros(16, dtype=bool)
        self._rows: dict[str, int] = {}
        self._used = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, key: str, vector: Any, texts: tuple[str, ...], expires_at: float) -> None:
        if key in self._rows:
            self.remove(key)
        if self._used == len(self._matrix):
            self._grow()
        i = self._used
        self._matrix[i] = vector
        self._alive[i] = True
        self._keys.append(key)
        self._texts.append(texts)
        self._expires.append(expires_at)
        self._rows[key] = i
        self._used += 1

    def remove(self, key: str) -> None:
        i = self._rows.pop(key, None)
        if i is not None:
            self._alive[i] = False
            self._keys[i] = None
            if self._used > 64 and len(self._rows) < self._used // 2:
                self._compact()

    def _grow(self) -> None:
        if len(self._rows) < self._used // 2:
            self._compact()
            if self._used < len(self._matrix):
                return
        n = len(self._matrix) * 2
        matrix = np.zeros((n, self._matrix.shape[1]), dtype=np.float32)
        matrix[: self._used] = self._matrix[: self._used]
        alive = np.zeros(n, dtype=bool)
        alive[: self._used] = self._alive[: self._used]
        self._matrix, self._alive = matrix, alive

    def _compact(self) -> None:
        keep = [i for i in range(self._used) if self._alive[i]]
        n = len(keep)
        self._matrix[:n] = self._matrix[keep]
        self._alive[:] = False
        self._alive[:n] = True
        self._keys = [self._keys[i] for i in keep]
        self._texts = [self._texts[i] for i in keep]
        self._expires = [self._expires[i] for i in keep]
        self._rows = {k: j for j, k in enumerate(self._keys) if k is not None}
        self._used = n

    def search(self, vector: Any, threshold: float, limit: int = 8) -> list[Candidate]:
        """Live rows at or above the threshold, most similar first (expired rows are dropped)."""
        if not self._rows:
            return []
        sims = self._matrix[: self._used] @ vector
        sims[~self._alive[: self._used]] = -2.0
        hits = np.nonzero(sims >= threshold)[0]
        if len(hits) == 0:
            return []
        order = hits[np.argsort(-sims[hits])][:limit]
        now = time.time()
        out, expired = [], []
        for i in order:
            key = self._keys[i]
            if key is None:
                continue
            if self._expires[i] <= now:
                expired.append(key)
            else:
                out.append(Candidate(float(sims[i]), key, self._texts[i]))
        for key in expired:
            self.remove(key)
        return out
