"""The CPU plan against what the real llama.cpp allocates for SmolLM2 (its own log lines)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from llmops.plan import memory as mem
from llmops.profiles.loader import Catalog

SCRIPT = """
import sys
from llama_cpp import Llama
Llama(model_path=sys.argv[1], n_ctx=int(sys.argv[2]), n_batch=512, n_threads=1, verbose=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("n_ctx", [2048, 8192])
def test_kv_and_compute_buffers_match_llama_cpp(smollm2_gguf: Path, n_ctx: int) -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(smollm2_gguf), str(n_ctx)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    kv_mib = float(re.search(r"KV buffer size =\s+([\d.]+) MiB", run.stderr).group(1))
    compute_mib = float(re.search(r"compute buffer size =\s+([\d.]+) MiB", run.stderr).group(1))
    arch = Catalog.discover().model("smollm2").profile.architecture
    assert arch is not None
    kv = n_ctx * arch.num_layers * mem.kv_bytes_per_token_per_layer(arch, 1, 2) / 2**20
    compute = mem.llamacpp_compute_bytes(arch, n_ctx=n_ctx, n_ubatch=512) / 2**20
    assert kv == pytest.approx(kv_mib, rel=0.01)
    assert compute == pytest.approx(compute_mib, rel=0.10)
