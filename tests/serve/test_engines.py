"""The engine registry: argv for the other engines, and the log diagnoses for common start-up failures."""

from __future__ import annotations

import pytest

from llmops.errors import UsageError
from llmops.profiles.loader import Catalog
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
    ]
    trt = _prepare("llama-70b", "a100-40gb-x4", engine="trtllm").launch
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
