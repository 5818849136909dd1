"""The engine registry: argv for the other engines, and the log diagnoses for common start-up failures."""

from __future__ import annotations

import pytest

from llmops.errors import UsageError
from llmops.profiles.loader import Catalog
from llmops.profiles.schema import ServingSettings
from llmops.serve import prepare
from llmops.serve.engines import ENGINES, get_engine
from llmops.serve.process import diagnose


def _prepare(model: str, node: str, **overrides):
    catalog = Catalog.discover(None)
    return prepare(catalog.model(model).profile, catalog.node(node).profile, overrides)


def test_registry_lists_every_engine_and_rejects_unknown() -> None:
    assert set(ENGINES) == {"vllm", "llamacpp", "sglang", "trtllm"}
    with pytest.raises(UsageError, match="unknown engine 'tgi'"):
        get_engine("tgi")


def test_sglang_and_trtllm_argv() -> None:
    sg = _prepare("llama-8b", "rtx4090-x8", engine="sglang", port=30000).launch
    assert sg.argv[1:] == [
        "-m",
        "sglang.launch_server",
        "--model-path",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--served-model-name",
        "llama-3.1-8b",
        "--host",
        "127.0.0.1",
        "--port",
        "30000",
        "--tp-size",
        "1",
        "--mem-fraction-static",
        "0.9",
        "--context-length",
        "8192",
        "--dtype",
        "bfloat16",
        "--max-running-requests",
        "128",
    ]
    catalog = Catalog.discover(None)
    llama = catalog.model("llama-70b").profile
    serving = ServingSettings(tensor_parallel_size=4, max_model_len=4096, max_num_seqs=64)
    trt = prepare(
        llama.model_copy(update={"serving": serving}),
        catalog.node("a100-40gb-x4").profile,
        {"engine": "trtllm"},
    ).launch
    assert trt.argv == [
        "trtllm-serve",
        "meta-llama/Llama-3.1-70B-Instruct",
        "--host",
        "127.0.0.1",
        "--port",
        "8000",
        "--backend",
        "pytorch",
        "--tp_size",
        "4",
        "--pp_size",
        "1",
        "--max_seq_len",
        "4096",
        "--max_batch_size",
        "64",
    ]
    assert trt.served_name == "meta-llama/Llama-3.1-70B-Instruct"


def test_a_setting_the_engine_ignores_is_refused_naming_it_and_where_it_was_set() -> None:
    # llama-70b's profile sets dtype, prefix caching and a 0.95 utilization: trtllm-serve uses none of them
    with pytest.raises(UsageError) as info:
        _prepare("llama-70b", "a100-40gb-x4", engine="trtllm")
    message = info.value.message
    assert message.startswith("engine trtllm does not use these settings: ")
    for part in (
        "gpu_memory_utilization=0.95 (serving.gpu_memory_utilization in the model profile)",
        "dtype='float16' (serving.dtype in the model profile)",
        "enable_prefix_caching=True (serving.enable_prefix_caching in the model profile)",
    ):
        assert part in message
    # a flag the engine drops names the flag; a value equal to the default changes nothing and passes
    with pytest.raises(
        UsageError, match=r"engine sglang does not use this setting: quantization='fp8' \(--quantization\)"
    ):
        _prepare("llama-8b", "rtx4090-x8", engine="sglang", quantization="fp8")
    assert _prepare("llama-8b", "rtx4090-x8", engine="sglang", quantization="none").launch.engine == "sglang"
    with pytest.raises(UsageError, match=r"engine llamacpp does not use this setting: kv_cache_dtype='fp8'"):
        _prepare("smollm2", "local-cpu", kv_cache_dtype="fp8")


def test_every_engine_declares_only_known_engine_settings() -> None:
    from llmops.profiles.serving import BY_NAME

    for name in ENGINES:
        engine = get_engine(name)
        assert engine.supports <= {n for n, spec in BY_NAME.items() if spec.scope == "engine"}, name


@pytest.mark.parametrize(("engine", "label"), [("sglang", "SGLang"), ("trtllm", "trtllm-serve")])
def test_hf_only_engines_refuse_a_gguf_model(engine: str, label: str) -> None:
    with pytest.raises(UsageError, match=f"{label} serves Hugging Face checkpoints") as info:
        _prepare("smollm2", "h100-80gb-x8", engine=engine)
    assert info.value.hint == "use --engine llamacpp for GGUF files"


def test_llamacpp_refuses_what_it_cannot_serve() -> None:
    with pytest.raises(UsageError, match=r"llama\.cpp serves GGUF files"):
        _prepare("llama-8b", "local-cpu", engine="llamacpp")
    with pytest.raises(UsageError, match="tensor/pipeline parallel"):
        _prepare("smollm2", "local-cpu", tensor_parallel_size=2)


@pytest.mark.parametrize(
    ("engine", "log", "expected"),
    [
        (
            "vllm",
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            "CUDA out of memory",
        ),
        (
            "vllm",
            "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', 8000): "
            "address already in use",
            "port is already in use",
        ),
        (
            "llamacpp",
            "gguf_init_from_file: failed to open GGUF file 'x.gguf'",
            "could not read the model file",
        ),
        ("vllm", "OSError: /models/x does not exist", "model file or checkpoint is missing"),
        (
            "vllm",
            "ValueError: Unknown quantization method: foo. Must be one of [...]",
            "quantization is not supported",
        ),
        ("vllm", "RuntimeError: No CUDA GPUs are available", "no usable GPU"),
    ],
)
def test_diagnoses(engine: str, log: str, expected: str) -> None:
    assert expected in (diagnose("INFO starting\n" + log + "\n", get_engine(engine).failures) or "")


def test_unknown_failure_has_no_diagnosis() -> None:
    assert diagnose("INFO all good\n", get_engine("vllm").failures) is None
