"""llmops.hf: a GGUF becomes a plain 16-bit Hugging Face checkpoint, once; nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.errors import UsageError
from llmops.hf.checkpoint import is_checkpoint_dir, materialize_checkpoint
from llmops.hf.perplexity import perplexity_from_nll, window_bounds
from llmops.profiles.schema import ModelProfile, ModelSource


def test_window_bounds_cover_the_text_without_overlap() -> None:
    assert window_bounds(1100, 512) == [(0, 512), (512, 1024), (1024, 1100)]
    assert window_bounds(1030, 512) == [(0, 512), (512, 1024)]  # a 6-token tail predicts too little
    assert window_bounds(5000, 512, max_windows=2) == [(0, 512), (512, 1024)]


def test_perplexity_of_uniform_guessing_is_the_vocabulary_size() -> None:
    import math

    assert perplexity_from_nll(100 * math.log(50), 100) == pytest.approx(50)


def test_hf_id_not_on_this_machine_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    model = ModelProfile(
        name="nowhere", source=ModelSource(hf="llmops-test/does-not-exist"), config="config.json"
    )
    with pytest.raises(UsageError) as exc:
        materialize_checkpoint(model)
    assert exc.value.exit_code == 2
    assert "is not on this machine" in exc.value.message
    assert "hf download llmops-test/does-not-exist" in exc.value.hint


def test_local_dir_without_weights_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    model = ModelProfile(name="x", source=ModelSource(path=str(tmp_path)))
    with pytest.raises(UsageError, match="is not a Hugging Face checkpoint"):
        materialize_checkpoint(model)


@pytest.mark.slow
def test_smollm2_gguf_becomes_a_cached_16bit_checkpoint(
    smollm2_checkpoint: Path, shared_data_dir: Path
) -> None:
    path = smollm2_checkpoint
    assert is_checkpoint_dir(path)
    assert path.parent == shared_data_dir / "checkpoints"
    assert path.name.startswith("smollm2-") and path.name.endswith("-bfloat16")
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["dtype"] == "bfloat16" and config["hidden_size"] == 576
    # 16-bit on disk: about 2 bytes per parameter (134.5M, tied embeddings stored once)
    weights = sum(p.stat().st_size for p in path.glob("*.safetensors"))
    assert 2 * 134e6 < weights < 2 * 136e6
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no half-written temp dirs

    from llmops.hf import load_tokenizer
    from llmops.profiles.loader import Catalog

    tokenizer = load_tokenizer(path)
    assert tokenizer.eos_token == "<|im_end|>"  # transformers' GGUF conversion says <|im_start|>; fixed
    assert tokenizer.pad_token == tokenizer.eos_token
    before = (path / "model.safetensors").stat().st_mtime_ns
    again = materialize_checkpoint(
        Catalog.discover(None).model("smollm2").profile, cache_dir=shared_data_dir / "checkpoints"
    )
    assert again == path and (path / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.slow
def test_materialized_checkpoint_generates_and_has_sane_perplexity(smollm2_checkpoint: Path) -> None:
    from llmops.hf import load_model, load_tokenizer
    from llmops.hf.perplexity import perplexity
    from llmops.quantize.texts import BUILTIN_EVAL, builtin

    model, tokenizer = load_model(smollm2_checkpoint, dtype="float32"), load_tokenizer(smollm2_checkpoint)
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**chat, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0][chat["input_ids"].shape[1] :])
    ppl = perplexity(model, tokenizer, builtin(BUILTIN_EVAL).text, seq_len=512)
    assert ppl.windows == 3 and ppl.tokens > 1500
    assert 5 < ppl.value < 60  # a 135M model on plain prose; uniform guessing would be 49152
