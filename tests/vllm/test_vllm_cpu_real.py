"""The real vLLM CPU build behind llmops: serve, plan vs log, monitor vs live /metrics, doctor, bench, and
every vLLM setting llmops emits started for real (one more start with all of them at once)."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.vllm.conftest import VllmServer, logged_kv_tokens

pytestmark = pytest.mark.slow


def chat(base_url: str, model: str, text: str, max_tokens: int = 32) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
            "temperature": 0}  # fmt: skip
    resp = httpx.post(f"{base_url}/chat/completions", json=body, timeout=120, trust_env=False)
    resp.raise_for_status()
    return resp.json()


def metrics(root: str) -> dict[str, float]:
    from llmops.bench.prom import parse

    return parse(httpx.get(f"{root}/metrics", timeout=10, trust_env=False).text)


def run(server: VllmServer, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmops", *args],
        capture_output=True, text=True, env=server.env, timeout=timeout,
    )  # fmt: skip


def test_serve_is_ready_and_answers(vllm_server: VllmServer) -> None:
    assert vllm_server.model == "smollm2-vllm"
    models = httpx.get(f"{vllm_server.base_url}/models", timeout=10, trust_env=False).json()
    assert [m["id"] for m in models["data"]] == ["smollm2-vllm"]
    answer = chat(vllm_server.base_url, "smollm2-vllm", "What is the capital of France?")
    assert "Paris" in answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] > 0
    log = vllm_server.log.read_text()
    assert "0.32.0" in log and "device_config=cpu" in log  # the CPU platform was detected
    assert "enforce_eager=True" in log  # the node profile's setting reached vLLM


def test_planned_kv_tokens_match_the_logged_figure(vllm_server: VllmServer) -> None:
    from llmops.plan import make_plan
    from llmops.profiles.loader import Catalog

    catalog = Catalog.discover(None)
    plan = make_plan(catalog.model("smollm2-vllm").profile, catalog.node("local-cpu").profile)
    assert plan.cpu_kvcache_space_gib == 1
    assert plan.kv_cache_tokens == logged_kv_tokens(vllm_server.log.read_text()) == 46_592


def test_monitor_rules_select_only_series_the_live_server_exposes(vllm_server: VllmServer) -> None:
    from llmops.monitor import catalog as cat
    from llmops.monitor.config import resolve
    from llmops.monitor.promql import selectors
    from llmops.monitor.rules import build
    from llmops.workspace import Workspace

    chat(vllm_server.base_url, "smollm2-vllm", "Hello")  # histograms get their first samples
    live = set(metrics(vllm_server.root))
    rs = build(resolve(Workspace(), vllm_version="0.32"))
    assert not rs.problems()
    used = {s.name for _, expr in rs.expressions() for s in selectors(expr) if s.name.startswith("vllm:")}
    assert used, "no vLLM rules"
    assert sorted(n for n in used if n not in live) == []
    # every catalogued vLLM name for this version is one the server exposes
    expected = {w for w, m in cat.exposed(cat.parse_version("0.32")).items() if m.source == "vllm"}
    assert sorted(w for w in expected if w not in live and not w.startswith("vllm:spec_decode")) == []


def test_doctor_endpoint_diagnoses_the_live_server(vllm_server: VllmServer) -> None:
    result = run(vllm_server, "doctor", "--endpoint", vllm_server.base_url, "--json", "--timeout", "120")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["kind"] == "vllm" and doc["models"] == ["smollm2-vllm"], doc
    assert doc["ttft_ms"] > 0
    assert not [f for f in doc["findings"] if f["status"] == "fail"], doc["findings"]


def test_bench_reads_the_server_view_and_prefix_cache_hits(vllm_server: VllmServer) -> None:
    result = run(
        vllm_server, "bench", "--target", vllm_server.base_url, "--model", "smollm2-vllm", "--num-prompts", "8",
        "--max-concurrency", "2", "--input-len", "300", "--prefix-len", "256", "--output-len", "8", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    text = json.dumps(doc)
    server = doc.get("server_metrics") or next(
        (r.get("server_metrics") for r in doc.get("runs", []) if r.get("server_metrics")), None
    )
    assert server is not None, text[:2000]
    assert server["kv_cache_usage_peak"] is not None and server["server_mean_ttft_ms"] > 0
    assert server["prefix_cache_hit_rate"] > 0.3  # 256 of ~300 prompt tokens shared: two 128-token blocks


def make_zero_lora(path) -> None:
    """A rank-8 LoRA adapter for q_proj/v_proj whose B matrices are zero: it serves as the base model."""
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    tensors = {}
    for i in range(30):
        for proj, width in (("q_proj", 576), ("v_proj", 192)):
            pre = f"base_model.model.model.layers.{i}.self_attn.{proj}"
            tensors[f"{pre}.lora_A.weight"] = torch.full((8, 576), 0.01, dtype=torch.bfloat16)
            tensors[f"{pre}.lora_B.weight"] = torch.zeros(width, 8, dtype=torch.bfloat16)
    save_file(tensors, path / "adapter_model.safetensors")
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
              "target_modules": ["q_proj", "v_proj"], "bias": "none"}  # fmt: skip
    (path / "adapter_config.json").write_text(json.dumps(config))


def test_every_emitted_setting_starts_for_real_in_one_start(
    vllm_server: VllmServer, tmp_path, monkeypatch
) -> None:
    """KV space 2 GiB with an fp8 KV cache (the plan's second point), OpenMP bound to both cores, prefix
    caching, chunked prefill, max_num_seqs, max_num_batched_tokens, max_model_len, a LoRA module, n-gram
    speculative decoding and a chat template file, all in one start of the CPU build."""
    from llmops.hf.checkpoint import checkpoint_target
    from llmops.plan import PlanRequest, make_plan
    from llmops.profiles.loader import Catalog
    from llmops.serve import running

    monkeypatch.setenv("LLMOPS_DATA_DIR", str(vllm_server.data_dir))  # the checkpoint made for the session
    catalog = Catalog.discover(None)
    model, node = catalog.model("smollm2-vllm").profile, catalog.node("local-cpu").profile
    make_zero_lora(tmp_path / "zero-lora")
    overrides = {
        "cpu_kvcache_space_gib": 2,
        "cpu_omp_threads_bind": "0-1",  # auto binds one core and reserves the other on this 2-core machine
        "kv_cache_dtype": "fp8",
        "enable_prefix_caching": True,
        "enable_chunked_prefill": True,
        "max_num_seqs": 8,
        "max_num_batched_tokens": 1024,
        "max_model_len": 1024,
        "lora_modules": [{"name": "zero", "path": str(tmp_path / "zero-lora")}],
        "max_lora_rank": 8,
        "speculative_config": {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 3},
        "chat_template": str(checkpoint_target(model) / "chat_template.jinja"),
    }
    log = tmp_path / "engine.log"
    with running(model, node, overrides=overrides, ready_timeout=900, log_path=log) as ep:
        ids = {
            m["id"] for m in httpx.get(f"{ep.base_url}/models", timeout=10, trust_env=False).json()["data"]
        }
        assert ids == {"smollm2-vllm", "zero"}
        repeat = "Repeat exactly: one two three four five six, one two three four five six"
        base = chat(ep.base_url, "smollm2-vllm", repeat, 24)["choices"][0]["message"]["content"]
        lora = chat(ep.base_url, "zero", repeat, 24)["choices"][0]["message"]["content"]
        assert base == lora and "one two three" in base.lower()  # zero LoRA: the base model's answer
        m = metrics(ep.base_url.removesuffix("/v1"))
        assert m["vllm:spec_decode_num_drafts_total"] > 0
        assert (
            0
            < m["vllm:spec_decode_num_accepted_tokens_total"]
            <= m["vllm:spec_decode_num_draft_tokens_total"]
        )
    text = log.read_text()
    assert "VLLM_CPU_OMP_THREADS_BIND='0-1'" in text and "core ids=[0, 1]" in text
    args = next(line for line in text.splitlines() if "non-default args" in line)  # what vLLM took
    for fragment in ("'enable_prefix_caching': True", "'enable_chunked_prefill': True", "'kv_cache_dtype': 'fp8'",
                     "'max_model_len': 1024", "'max_num_seqs': 8", "'max_num_batched_tokens': 1024",
                     "'enable_lora': True", "'max_lora_rank': 8", "'speculative_config': {'method': 'ngram'",
                     "chat_template.jinja", "'enforce_eager': True"):  # fmt: skip
        assert fragment in args, fragment
    plan = make_plan(model, node, PlanRequest(**{k: overrides[k] for k in ("kv_cache_dtype",)},
                     cpu_kvcache_space_gib=2, max_model_len=1024))  # fmt: skip
    assert plan.kv_cache_tokens == logged_kv_tokens(text) == 186_368


def test_batch_local_backend_runs_against_the_live_server(vllm_server: VllmServer, tmp_path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    lines = [{"custom_id": f"q{i}", "prompt": f"Say the number {i}."} for i in range(4)]
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "results.jsonl"
    result = run(
        vllm_server, "batch", "submit", str(prompts), "--provider", "local", "--base-url", vllm_server.base_url,
        "--model", "smollm2-vllm", "--max-tokens", "8", "--wait", "-o", str(out), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["custom_id"] for r in results] == ["q0", "q1", "q2", "q3"]
    for r in results:
        assert r["error"] is None and r["response"]["status_code"] == 200, r
        assert r["response"]["body"]["model"] == "smollm2-vllm"
        assert r["response"]["body"]["choices"][0]["message"]["content"]
