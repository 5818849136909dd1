"""Step 2: the same token ids through PyTorch and onnxruntime; logit differences and greedy-token agreement.

Tolerances, per precision of the ONNX file that is checked (the reference is always PyTorch float32):

| ONNX dtype | max abs logit diff | greedy agreement | why |
|------------|--------------------|------------------|-----|
| float32    | 1e-3               | 100 %            | same math, different kernels: SmolLM2 measures ~1e-4 |
| float16    | 0.5                | 90 %             | 10-bit mantissa in every layer; logits reach ~±30 |
| bfloat16   | 2.0                | 75 %             | 7-bit mantissa |

"relative" below is max abs diff / max |reference logit| (relative to the logit scale, not element-wise,
which is meaningless for logits near zero). Greedy agreement: each backend decodes a few tokens greedily
from each prompt on its own, and we count positions where both chose the same token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.errors import require_module

DEFAULT_PROMPTS = (
    "The capital of France is",
    "def fibonacci(n):",
    "Water boils at a temperature of",
    "Once upon a time, a small robot",
)


@dataclass(frozen=True)
class Tolerance:
    max_abs: float
    min_agreement: float


TOLERANCES: dict[str, Tolerance] = {
    "float32": Tolerance(max_abs=1e-3, min_agreement=1.0),
    "float16": Tolerance(max_abs=0.5, min_agreement=0.9),
    "bfloat16": Tolerance(max_abs=2.0, min_agreement=0.75),
}


@dataclass
class ParityReport:
    onnx: str
    dtype: str
    prompts: int
    max_abs: float | None = None
    max_rel: float | None = None
    greedy_agreement: float | None = None
    torch_tokens: list[list[int]] = field(default_factory=list)
    onnx_tokens: list[list[int]] = field(default_factory=list)
    tolerance: Tolerance | None = None
    passed: bool | None = None
    seconds: float = 0.0
    skipped: str | None = None

    def verdict(self) -> str:
        if self.skipped:
            return f"not checked: {self.skipped}"
        tol = self.tolerance
        assert tol is not None
        return (
            f"max |Δlogit| {self.max_abs:.3g} (limit {tol.max_abs:g}), relative {self.max_rel:.3g}, "
            f"greedy agreement {self.greedy_agreement:.0%} (limit {tol.min_agreement:.0%})"
        )


def logit_stats(reference: Any, other: Any, mask: Any) -> tuple[float, float]:
    """(max abs diff, max abs diff / max |reference|) over the positions where mask is 1."""
    import numpy as np

    ref = np.asarray(reference, dtype=np.float64)
    got = np.asarray(other, dtype=np.float64)
    if ref.shape != got.shape:
        raise ValueError(f"logit shapes differ: {ref.shape} vs {got.shape}")
    keep = np.asarray(mask).astype(bool)
    ref, got = ref[keep], got[keep]
    if ref.size == 0:
        raise ValueError("no unmasked positions to compare")
    diff = float(np.max(np.abs(ref - got)))
    scale = float(np.max(np.abs(ref)))
    return diff, diff / scale if scale > 0 else float("inf")


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    """Fraction of positions where two lists of token sequences hold the same token."""
    total = sum(len(x) for x in a)
    if total == 0 or [len(x) for x in a] != [len(x) for x in b]:
        raise ValueError("token sequences must be non-empty and of equal lengths")
    same = sum(int(p == q) for x, y in zip(a, b, strict=True) for p, q in zip(x, y, strict=True))
    return same / total


def judge(max_abs: float, greedy: float, tol: Tolerance) -> bool:
    return max_abs <= tol.max_abs and greedy >= tol.min_agreement


def onnx_session(path: Path) -> Any:
    ort = require_module("onnxruntime", extra="onnx", purpose="the parity check")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _greedy(step: Any, ids: list[int], new_tokens: int) -> list[int]:
    """Decode greedily without a KV cache: re-run the whole sequence for each new token."""
    import numpy as np

    seq = list(ids)
    out = []
    for _ in range(new_tokens):
        arr = np.asarray([seq], dtype=np.int64)
        logits = step(arr, np.ones_like(arr))
        token = int(np.argmax(logits[0, -1]))
        out.append(token)
        seq.append(token)
    return out


def check_parity(
    model: Any,
    onnx_path: Path,
    tokenizer: Any,
    *,
    dtype: str = "float32",
    prompts: tuple[str, ...] = DEFAULT_PROMPTS,
    new_tokens: int = 4,
) -> ParityReport:
    """Run the prompts through both backends; judge against the tolerance for the ONNX file's dtype."""
    import time

    import numpy as np

    torch = require_module("torch", extra="onnx", purpose="the parity check")
    start = time.perf_counter()
    report = ParityReport(onnx=str(onnx_path), dtype=dtype, prompts=len(prompts), tolerance=TOLERANCES[dtype])
    session = onnx_session(onnx_path)
    model = model.to(torch.float32).eval()

    def torch_step(ids: Any, mask: Any) -> Any:
        with torch.no_grad():
            out = model(
                input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), use_cache=False
            )
        return out.logits.float().numpy()

    def onnx_step(ids: Any, mask: Any) -> Any:
        return session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0].astype(np.float32)

    batch = tokenizer(list(prompts), return_tensors="np", padding=True)
    ids = batch["input_ids"].astype(np.int64)
    mask = batch["attention_mask"].astype(np.int64)
    try:
        got = onnx_step(ids, mask)
    except Exception as exc:  # onnxruntime raises its own Fail/NotImplemented types
        if dtype == "float32":
            raise
        report.skipped = f"onnxruntime (CPU) cannot run the {dtype} graph: {str(exc).splitlines()[0][:160]}"
        return report
    report.max_abs, report.max_rel = logit_stats(torch_step(ids, mask), got, mask)
    for row, row_mask in zip(ids, mask, strict=True):
        prompt = [int(t) for t, m in zip(row, row_mask, strict=True) if m]
        report.torch_tokens.append(_greedy(torch_step, prompt, new_tokens))
        report.onnx_tokens.append(_greedy(onnx_step, prompt, new_tokens))
    report.greedy_agreement = agreement(report.torch_tokens, report.onnx_tokens)
    report.passed = judge(report.max_abs, report.greedy_agreement, report.tolerance)
    report.seconds = time.perf_counter() - start
    return report
