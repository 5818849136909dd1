"""Parity arithmetic: masked logit differences, greedy agreement, tolerance judgement."""

from __future__ import annotations

import numpy as np
import pytest

from llmops.trt.parity import TOLERANCES, agreement, judge, logit_stats


def test_logit_stats_ignore_padded_positions() -> None:
    ref = np.zeros((2, 3, 4), dtype=np.float32)
    ref[0, 0, 0] = 10.0
    got = ref.copy()
    got[0, 1, 2] += 0.5  # a real position
    got[1, 2, :] += 100.0  # padding: must not count
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    max_abs, max_rel = logit_stats(ref, got, mask)
    assert max_abs == pytest.approx(0.5)
    assert max_rel == pytest.approx(0.05)


def test_logit_stats_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        logit_stats(np.zeros((1, 2, 3)), np.zeros((1, 3, 3)), np.ones((1, 2)))


def test_agreement_counts_positions() -> None:
    assert agreement([[1, 2, 3], [4, 5]], [[1, 2, 3], [4, 5]]) == 1.0
    assert agreement([[1, 2, 3, 4]], [[1, 9, 3, 9]]) == 0.5
    with pytest.raises(ValueError):
        agreement([[1]], [[1, 2]])


def test_tolerances_per_precision() -> None:
    fp32 = TOLERANCES["float32"]
    assert judge(1e-4, 1.0, fp32)
    assert not judge(2e-3, 1.0, fp32)
    assert not judge(1e-5, 0.95, fp32)  # fp32 demands identical greedy tokens
    assert judge(0.3, 0.95, TOLERANCES["float16"])
    assert TOLERANCES["float32"].max_abs < TOLERANCES["float16"].max_abs < TOLERANCES["bfloat16"].max_abs
