"""llama.cpp's CPU self-check: the fast path where it works, the safe setting where a kernel crashes.

This machine's kernels may not crash, so LLMOPS_SELFCHECK_CRASH makes the probe child die of a real
SIGSEGV on purpose ("on": only with the extra buffer types on; "all": in both modes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from llmops.errors import OperationFailed
from llmops.serve.cpu import parse_cpuinfo

from .conftest import serve_ready

AMX_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu
"""


def test_cpuinfo_names_the_watched_instruction_sets() -> None:
    facts = parse_cpuinfo(AMX_CPUINFO)
    assert facts.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert facts.flags == (
        "avx2",
        "avx512f",
        "avx512_vnni",
        "avx512_bf16",
        "amx_tile",
        "amx_int8",
        "amx_bf16",
    )
    assert facts.has_amx
    assert parse_cpuinfo("").flags == () and not parse_cpuinfo("flags: avx2").has_amx


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLMOPS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_the_check_passes_here_and_is_remembered(own_cache: Path, smollm2_gguf: Path) -> None:
    from llmops.serve.engines.llamacpp_selfcheck import verdict

    found, fresh = verdict(smollm2_gguf)
    assert fresh and found is not None
    assert found.extra_buffer_types is True and found.reason == "the self-check passed with them on"
    probe = found.probes[0]
    assert probe.ok and probe.prefill_tps and probe.prefill_tps > 0 and probe.decode_tps
    again, fresh = verdict(smollm2_gguf)
    assert not fresh and again == found
    assert json.loads((own_cache / "selfcheck" / "llamacpp-cpu.json").read_text())[found.key][
        "extra_buffer_types"
    ]


@pytest.mark.slow
def test_a_crashing_fast_path_falls_back_to_the_safe_setting(
    own_cache: Path, smollm2_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmops.serve.engines.llamacpp_selfcheck import fallback_note, verdict

    monkeypatch.setenv("LLMOPS_SELFCHECK_CRASH", "on")
    found, fresh = verdict(smollm2_gguf)
    assert fresh and found is not None and found.extra_buffer_types is False
    on, off = found.probes
    assert not on.ok and on.outcome == "died of SIGSEGV (segmentation fault)"
    assert "Fatal Python error: Segmentation fault" in on.log_tail  # faulthandler in the child
    assert off.ok and off.prefill_tps
    assert "with them on, the self-check died of SIGSEGV" in fallback_note(found)


@pytest.mark.slow
def test_when_both_settings_crash_the_error_says_how_to_rebuild(
    own_cache: Path, smollm2_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmops.serve.engines.llamacpp_selfcheck import verdict

    monkeypatch.setenv("LLMOPS_SELFCHECK_CRASH", "all")
    with pytest.raises(OperationFailed) as info:
        verdict(smollm2_gguf)
    assert "even with its extra buffer types off" in info.value.message
    assert "died of SIGSEGV" in info.value.message
    assert "make llamacpp-portable" in (info.value.hint or "")


@pytest.mark.slow
def test_serve_takes_the_fallback_says_so_once_and_answers(
    own_cache: Path, llmops_env: dict[str, str], tmp_path: Path
) -> None:
    """The whole path as a user meets it: serve on a 'crashing' CPU, then again, then doctor."""
    from tests.conftest import free_port

    env = {**llmops_env, "LLMOPS_CACHE_DIR": str(own_cache), "LLMOPS_SELFCHECK_CRASH": "on"}
    notes = []
    for _ in range(2):
        port = free_port()
        proc, ep = serve_ready(port, env)
        try:
            cmdline = Path(f"/proc/{ep['pid']}/cmdline").read_bytes().split(b"\0")
            assert cmdline[cmdline.index(b"serve") + 1] == b"off"  # the engine runs the safe setting
            reply = httpx.post(
                f"{ep['base_url']}/chat/completions",
                json={
                    "model": "smollm2",
                    "messages": [{"role": "user", "content": "Say hi."}],
                    "max_tokens": 8,
                },
                timeout=60,
            )
            assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
        finally:
            proc.send_signal(2)
            _, err = proc.communicate(timeout=30)
        notes.append(err.count("extra CPU buffer types (AMX, repacked weights) are off on this machine"))
    assert notes == [1, 0]  # said once, on the first serve on this machine
    doctor = subprocess.run(
        [sys.executable, "-m", "llmops", "doctor", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    paths = json.loads(doctor.stdout)["cpu_paths"]
    assert paths["checked"] and paths["extra_buffer_types"] is False
    assert "died of SIGSEGV" in paths["reason"] and "off" in paths["prefill_tps"]
