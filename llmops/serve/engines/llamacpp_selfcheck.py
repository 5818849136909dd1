"""Whether llama.cpp's fast CPU paths run on this machine: a self-check in a child, remembered per machine.

llama.cpp built with native flags picks kernels by what the CPU reports. Some of them crash: on Xeons
with AMX, any prompt longer than one token dies with SIGSEGV in `ggml_backend_amx_mul_mat`; AVX-512
paths under some hypervisors do the same. They are reached through llama.cpp's "extra buffer types"
(AMX and repacked weights). So before the first serve on a machine, a child process evaluates a
multi-token prompt with them on; if it dies, a second child checks the safe setting (them off), and the
verdict is stored per CPU, llama.cpp build and model file, so the check runs once per machine.
`llmops doctor` shows the verdict; `make install` runs the check once.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from llmops.errors import OperationFailed
from llmops.serve.cpu import cpu_facts
from llmops.serve.exits import CRASH_SIGNALS, describe_exit, signal_name

CHILD = Path(__file__).with_name("llamacpp_child.py")
PROBE_TIMEOUT_S = 180.0
CRASH_ENV = "LLMOPS_SELFCHECK_CRASH"  # tests: make the probe die on purpose ("on" or "all")
REBUILD_HINT = (
    "rebuild llama.cpp for a portable CPU baseline: make llamacpp-portable "
    "(CMAKE_ARGS='-DGGML_NATIVE=OFF' pip install --no-cache-dir --force-reinstall llama-cpp-python)"
)


class ProbeResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    extra_buffer_types: bool
    ok: bool
    outcome: str  # "passed", "died of SIGSEGV (segmentation fault)", "exited with status 1", ...
    signal: str | None = None  # the signal it died of, by name
    seconds: float
    prefill_tps: float | None = None
    decode_tps: float | None = None
    log_tail: str = ""


class CpuVerdict(BaseModel):
    """The stored result of the self-check for one machine, llama.cpp build and model file."""

    model_config = ConfigDict(extra="forbid")

    key: str
    cpu: str
    flags: list[str]
    llama_cpp: str | None
    model: str
    extra_buffer_types: bool  # the setting `auto` chooses on this machine
    reason: str
    checked_at: str
    probes: list[ProbeResult]


def verdict_path() -> Path:
    from llmops.paths import user_cache_dir

    return user_cache_dir() / "selfcheck" / "llamacpp-cpu.json"


def _library_stamp() -> str:
    """The built llama.cpp libraries' sizes and times: a rebuild (other flags) changes the key."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return "none"
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    parts = []
    for path in sorted(lib.glob("*.so*")) if lib.is_dir() else []:
        st = path.stat()
        parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts) or "none"


def _version() -> str | None:
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        return None


def machine_key(model: Path) -> str:
    cpu = cpu_facts()
    try:
        st = model.stat()
        model_stamp = f"{model.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        model_stamp = str(model)
    parts = [cpu.model, cpu.arch, ",".join(cpu.flags), str(_version()), _library_stamp(), model_stamp]
    parts.append(os.environ.get(CRASH_ENV, ""))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def run_probe(model: Path, extra: bool, *, prompt_tokens: int = 24, decode_tokens: int = 4) -> ProbeResult:
    """One child process: load the model, evaluate a multi-token prompt, decode a few tokens."""
    argv = [sys.executable, "-P", str(CHILD), "probe", str(model), "on" if extra else "off"]
    argv += [str(prompt_tokens), str(decode_tokens)]
    t0 = time.monotonic()
    try:
        res = subprocess.run(
            argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(
            extra_buffer_types=extra,
            ok=False,
            outcome=f"did not finish in {PROBE_TIMEOUT_S:g} s",
            seconds=PROBE_TIMEOUT_S,
        )
    seconds = round(time.monotonic() - t0, 2)
    output = (res.stdout + res.stderr).strip()
    tail = "\n".join(output.splitlines()[-8:])
    if res.returncode != 0:
        return ProbeResult(
            extra_buffer_types=extra,
            ok=False,
            outcome=describe_exit(res.returncode),
            signal=signal_name(res.returncode) if res.returncode < 0 else None,
            seconds=seconds,
            log_tail=tail,
        )
    try:
        figures = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return ProbeResult(
            extra_buffer_types=extra, ok=False, outcome="printed no result", seconds=seconds, log_tail=tail
        )
    return ProbeResult(
        extra_buffer_types=extra,
        ok=True,
        outcome="passed",
        seconds=seconds,
        prefill_tps=figures.get("prefill_tps"),
        decode_tps=figures.get("decode_tps"),
    )


def crashed(probe: ProbeResult) -> bool:
    """Died of a signal a broken kernel raises (not: could not load the file, timed out)."""
    return probe.signal in CRASH_SIGNALS


def embedded_gguf() -> Path | None:
    """The embedded default's GGUF (SmolLM2, shipped profile): the self-check's model when installed,
    so the check tests the machine, not whichever model is being served."""
    from llmops.errors import LlmopsError
    from llmops.paths import shipped_configs_dir
    from llmops.profiles.checkpoint import resolve_gguf_path
    from llmops.profiles.loader import Catalog

    try:
        source = Catalog([shipped_configs_dir()]).get("model", "smollm2").profile.source
        return resolve_gguf_path(source) if source.gguf else None
    except LlmopsError:
        return None


def check(model: Path, key: str) -> CpuVerdict | None:
    """Probe with the extra buffer types on; if that crashes, probe the safe setting. Raises if both
    crash; None when the probe failed for another reason (no verdict: the engine reports its own)."""
    cpu = cpu_facts()
    probes = [run_probe(model, True)]
    if probes[0].ok:
        extra, reason = True, "the self-check passed with them on"
    elif not crashed(probes[0]):
        return None
    else:
        probes.append(run_probe(model, False))
        if crashed(probes[1]):
            raise OperationFailed(
                f"llama.cpp fails its CPU self-check on {cpu.describe()} even with its extra buffer "
                f"types off: with them on it {probes[0].outcome}, with them off it {probes[1].outcome}"
                + (f"\nlast lines:\n{probes[1].log_tail}" if probes[1].log_tail else ""),
                hint=REBUILD_HINT,
            )
        extra = False
        reason = f"with them on, the self-check {probes[0].outcome}; with them off it passed"
    return CpuVerdict(
        key=key,
        cpu=cpu.model,
        flags=list(cpu.flags),
        llama_cpp=_version(),
        model=str(model),
        extra_buffer_types=extra,
        reason=reason,
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
        probes=probes,
    )


def stored_verdicts() -> dict[str, CpuVerdict]:
    path = verdict_path()
    try:
        raw = json.loads(path.read_text())
        return {k: CpuVerdict.model_validate(v) for k, v in raw.items()}
    except (OSError, ValueError):
        return {}  # none yet, or written by another version: check again


def verdict(model: Path, *, recheck: bool = False) -> tuple[CpuVerdict | None, bool]:
    """The verdict for this machine and model, and whether it was made just now (say so once)."""
    key = machine_key(model)
    known = stored_verdicts()
    if not recheck and key in known:
        return known[key], False
    found = check(model, key)
    if found is None:
        return None, True
    known[key] = found
    from llmops.output import write_output_file

    path = verdict_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_output_file(path, json.dumps({k: v.model_dump() for k, v in known.items()}, indent=2), force=True)
    return found, True


def fallback_note(found: CpuVerdict) -> str:
    return (
        f"llama.cpp's extra CPU buffer types (AMX, repacked weights) are off on this machine: {found.reason} "
        f"({found.cpu}). Serving with the safe setting; `llmops doctor` shows the CPU paths."
    )


class CpuPaths(BaseModel):
    """Which of llama.cpp's CPU paths are on here, and why (the self-check's stored verdict)."""

    cpu: str
    flags: list[str]  # the instruction sets llama.cpp's kernels pick from (AVX2, AVX-512, AMX)
    checked: bool
    extra_buffer_types: bool | None  # None: not checked yet (the first serve checks)
    reason: str
    checked_at: str | None = None
    prefill_tps: dict[str, float] = {}  # "on"/"off" -> tokens/s measured by the self-check's probes
    decode_tps: dict[str, float] = {}


def cpu_paths(model: Path | None = None, *, run: bool = False) -> CpuPaths:
    """The CPU facts and the self-check's verdict for `model` (default: the embedded SmolLM2); `run`
    checks again (what `llmops doctor --self-check` and `make install` do)."""
    model = model or embedded_gguf()
    cpu = cpu_facts()
    found = None
    if model is not None:
        found = verdict(model, recheck=True)[0] if run else stored_verdicts().get(machine_key(model))
    if found is None and run and model is not None:
        raise OperationFailed(
            f"llama.cpp's CPU self-check could not run SmolLM2 ({model})",
            hint="see `llmops serve smollm2 -v` for the engine's own error",
        )
    if found is None:
        return CpuPaths(
            cpu=cpu.model,
            flags=list(cpu.flags),
            checked=False,
            extra_buffer_types=None,
            reason="not checked yet: the first `llmops serve` of a llama.cpp model checks (or: llmops doctor --self-check)",
        )
    mode = {True: "on", False: "off"}
    return CpuPaths(
        cpu=found.cpu,
        flags=found.flags,
        checked=True,
        extra_buffer_types=found.extra_buffer_types,
        reason=found.reason,
        checked_at=found.checked_at,
        prefill_tps={
            mode[p.extra_buffer_types]: round(p.prefill_tps, 1) for p in found.probes if p.prefill_tps
        },
        decode_tps={mode[p.extra_buffer_types]: round(p.decode_tps, 1) for p in found.probes if p.decode_tps},
    )
