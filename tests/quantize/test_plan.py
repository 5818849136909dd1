from __future__ import annotations

from pathlib import Path

import pytest

from llmops.errors import EnvironmentMissing, MissingExtra, UsageError
from llmops.profiles.loader import Catalog
from llmops.profiles.schema import ModelProfile
from llmops.quantize.memory import check_ram, estimate_params
from llmops.quantize.plan import QuantizeFlags, make_plan
from llmops.quantize.registry import QUANTIZERS, spec_for
from llmops.workspace import QuantizeSection


@pytest.fixture
def smollm2() -> ModelProfile:
    return Catalog.discover(None).model("smollm2").profile


def test_defaults_are_gptq_w4_group_64_builtin_data(smollm2: ModelProfile) -> None:
    plan = make_plan(smollm2, QuantizeFlags())
    assert (plan.spec.method, plan.spec.format, plan.bits, plan.group_size) == (
        "gptq",
        "compressed-tensors",
        4,
        64,
    )
    assert plan.value("calib") == "builtin:calibration"
    assert plan.output == Path.cwd() / "smollm2-w4a16-g64"
    assert plan.scheme == "W4A16 g64"
    assert all(origin == "default" for _, _, origin in plan.rows())


def test_flags_beat_workspace_beats_defaults(smollm2: ModelProfile) -> None:
    ws = QuantizeSection(method="gptq", bits=8, samples=8, seq_len=64, output="from-ws")
    plan = make_plan(smollm2, QuantizeFlags(bits=4, group_size=32), ws)
    origins = {k: o for k, _, o in plan.rows()}
    assert plan.bits == 4 and origins["bits"] == "flag"
    assert plan.group_size == 32 and origins["group_size"] == "flag"
    assert plan.value("samples") == 8 and origins["samples"] == "workspace"
    assert plan.output == Path.cwd() / "from-ws" and origins["output"] == "workspace"
    assert origins["method"] == "workspace"


def test_bnb_takes_no_group_size_or_calibration(smollm2: ModelProfile) -> None:
    plan = make_plan(smollm2, QuantizeFlags(method="bnb"))
    assert plan.group_size is None and plan.scheme == "nf4"
    assert "calib" not in plan.settings
    assert plan.output.name == "smollm2-bnb-nf4"
    with pytest.raises(UsageError, match="no group size"):
        make_plan(smollm2, QuantizeFlags(method="bnb", group_size=64))
    with pytest.raises(UsageError, match="needs no calibration"):
        make_plan(smollm2, QuantizeFlags(method="bnb", samples=4))


@pytest.mark.parametrize("bits", [2, 3, 16])
def test_unsupported_bits(smollm2: ModelProfile, bits: int) -> None:
    with pytest.raises(UsageError, match=f"unsupported --bits {bits}") as exc:
        make_plan(smollm2, QuantizeFlags(bits=bits))
    assert exc.value.hint == "use --bits 4 or 8"


def test_unknown_method_and_format(smollm2: ModelProfile) -> None:
    with pytest.raises(UsageError, match="unknown --method 'awq'"):
        make_plan(smollm2, QuantizeFlags(method="awq"))
    with pytest.raises(UsageError, match="--format gptq is not available with --method bnb"):
        make_plan(smollm2, QuantizeFlags(method="bnb", format="gptq"))


def test_gptqmodel_format_plan_and_missing_extra(smollm2: ModelProfile) -> None:
    plan = make_plan(smollm2, QuantizeFlags(format="gptq"))
    assert plan.output.name == "smollm2-gptq-w4a16-g64"
    import importlib.util

    if importlib.util.find_spec("gptqmodel") is None:
        with pytest.raises(MissingExtra) as exc:
            plan.spec.require()
        assert exc.value.exit_code == 3
        assert "pip install 'llmops[gptqmodel]'" in exc.value.render()
    else:
        plan.spec.require()


def test_every_registered_quantizer_module_exposes_a_quantizer() -> None:
    for name, quantizer in QUANTIZERS.items():  # the modules import no heavy library at import time
        assert callable(quantizer.quantize) and quantizer.spec.key == name
    assert spec_for("gptq", None).format == "compressed-tensors"


def test_environment_sits_between_flags_and_workspace(smollm2: ModelProfile, monkeypatch) -> None:
    monkeypatch.setenv("LLMOPS_QUANTIZE_BITS", "8")
    monkeypatch.setenv("LLMOPS_QUANTIZE_SAMPLES", "4")
    plan = make_plan(smollm2, QuantizeFlags(samples=2), QuantizeSection(bits=4))
    origins = {k: o for k, _, o in plan.rows()}
    assert plan.bits == 8 and origins["bits"] == "env"
    assert plan.value("samples") == 2 and origins["samples"] == "flag"
    monkeypatch.setenv("LLMOPS_QUANTIZE_BITS", "3")
    with pytest.raises(UsageError, match="LLMOPS_QUANTIZE_BITS"):
        make_plan(smollm2, QuantizeFlags())


def test_smollm2_parameter_estimate_matches_the_profile(smollm2: ModelProfile) -> None:
    arch = smollm2.architecture.model_copy(update={"num_params": None})
    assert abs(estimate_params(arch) - 1.3452e8) / 1.3452e8 < 0.01


def test_ram_check_refuses_before_loading() -> None:
    with pytest.raises(EnvironmentMissing) as exc:
        check_ram("llama-3.1-70b", 70.6e9, 4.0, available=64 * 1024**3)
    assert exc.value.exit_code == 3
    assert "needs about" in exc.value.message and "64.0 GiB is available" in exc.value.message
    assert check_ram("smollm2", 1.35e8, 4.0, available=8 * 1024**3) < 2 * 1024**3
