"""`llmops serve smollm2-vllm --pp 2` on one host, for real: two pipeline stages on vLLM's CPU build, each
worker bound to its own core and compiled (the node profile says eager; llmops derives compiled mode for PP).
One start (~90 s with the compile cache under ~/.cache/vllm, ~3 min cold) shared by the tests here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vllm.conftest import VllmServer, logged_kv_tokens, require_vllm_env, serving
from tests.vllm.test_vllm_cpu_real import chat

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pp2_server(vllm_data_dir: Path) -> Iterator[VllmServer]:
    from tests.conftest import free_port

    require_vllm_env()
    with serving(vllm_data_dir, "pp2", "smollm2-vllm", "--pp", "2", "--port", str(free_port())) as server:
        yield server
    assert server.proc.returncode == 0, server.err.read_text()[-2000:]


def test_pp2_answers_with_two_compiled_stages_one_core_each(pp2_server: VllmServer) -> None:
    # compiled, this short prompt wanders off ("L'Étoile, la Marseillaise, ..."; eager one-worker says Paris):
    # the prompt the two-host test uses too
    answer = chat(pp2_server.base_url, pp2_server.model, "What is the capital of France? Write a long essay.")
    assert "Paris" in answer["choices"][0]["message"]["content"]  # eager PP would have died here
    log = pp2_server.log.read_text()
    assert "pipeline_parallel_size=2" in log and "enforce_eager=False" in log
    assert "Worker_PP0" in log and "Worker_PP1" in log


def test_planned_per_stage_kv_tokens_match_the_logged_figure(pp2_server: VllmServer) -> None:
    from llmops.plan import make_plan
    from llmops.plan.model import PlanRequest
    from llmops.profiles.loader import Catalog

    catalog = Catalog.discover(None)
    model, node = catalog.model("smollm2-vllm").profile, catalog.node("local-cpu").profile
    one, two = make_plan(model, node), make_plan(model, node, PlanRequest(pp=2))
    # each stage holds 15 of the 30 layers in its own 1 GiB: half the bytes per token, twice the tokens
    assert two.kv_bytes_per_token_per_gpu * 2 == one.kv_bytes_per_token_per_gpu == 2 * 30 * 3 * 64 * 2
    assert two.kv_cache_tokens == logged_kv_tokens(pp2_server.log.read_text()) == 2 * 46_592
