"""Step 4: a Triton model repository: tokenizer -> engine -> postprocessor, chained by an ensemble.

The engine's inputs and outputs are read from the ONNX graph that the engine was built from, so names,
data types and dims agree along the chain; `check_repository` re-reads every config.pbtxt and verifies it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llmops.errors import require_module
from llmops.trt import pbtxt

TOKENIZER, ENGINE, POSTPROCESSOR, ENSEMBLE = "tokenizer", "llm", "postprocessor", "ensemble"
MODELS = (TOKENIZER, ENGINE, POSTPROCESSOR, ENSEMBLE)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "added_tokens.json",
)
ONNX_TO_TRITON = {
    "INT64": "TYPE_INT64",
    "INT32": "TYPE_INT32",
    "FLOAT": "TYPE_FP32",
    "FLOAT16": "TYPE_FP16",
    "BFLOAT16": "TYPE_BF16",
    "BOOL": "TYPE_BOOL",
    "STRING": "TYPE_STRING",
}
EnginePlatform = Literal["tensorrt_plan", "onnxruntime_onnx"]
ENGINE_FILE = {"tensorrt_plan": "model.plan", "onnxruntime_onnx": "model.onnx"}


@dataclass(frozen=True)
class Tensor:
    name: str
    data_type: str
    dims: tuple[int, ...]  # without the batch dimension; -1 = variable

    def pbtxt(self) -> str:
        return (
            f'  {{\n    name: "{self.name}"\n    data_type: {self.data_type}\n'
            f"    dims: [ {', '.join(str(d) for d in self.dims)} ]\n  }}"
        )


@dataclass(frozen=True)
class Signature:
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]


def onnx_signature(onnx_path: Path) -> Signature:
    """The graph's inputs/outputs as Triton tensors, dropping the leading batch dimension."""
    onnx = require_module("onnx", extra="onnx", purpose="reading the ONNX signature")
    graph = onnx.load(str(onnx_path), load_external_data=False).graph

    def tensor(value: Any) -> Tensor:
        kind = onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type)
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]
        return Tensor(value.name, ONNX_TO_TRITON[kind], tuple(dims[1:]))

    initializers = {i.name for i in graph.initializer}
    return Signature(
        tuple(tensor(v) for v in graph.input if v.name not in initializers),
        tuple(tensor(v) for v in graph.output),
    )


def _config(
    name: str,
    head: str,
    max_batch: int,
    inputs: tuple[Tensor, ...],
    outputs: tuple[Tensor, ...],
    tail: str = "",
) -> str:
    return (
        f'name: "{name}"\n{head}\nmax_batch_size: {max_batch}\n'
        f"input [\n{_block(inputs)}\n]\noutput [\n{_block(outputs)}\n]\n{tail}"
    )


def _block(tensors: tuple[Tensor, ...]) -> str:
    return ",\n".join(t.pbtxt() for t in tensors)


def _maps(kind: str, pairs: dict[str, str]) -> str:
    return "".join(f'      {kind} {{ key: "{k}" value: "{v}" }}\n' for k, v in pairs.items())


def repository_configs(
    sig: Signature, *, max_batch: int, max_seq: int, platform: EnginePlatform = "tensorrt_plan"
) -> dict[str, str]:
    """Pure: the four config.pbtxt texts for an engine with this signature."""
    by_name = {t.name: t for t in (*sig.inputs, *sig.outputs)}
    ids, mask, logits = by_name["input_ids"], by_name["attention_mask"], by_name["logits"]
    text_in = Tensor("text_input", "TYPE_STRING", (1,))
    token_out, text_out = (
        Tensor("next_token_id", "TYPE_INT64", (1,)),
        Tensor("text_output", "TYPE_STRING", (1,)),
    )
    python = 'backend: "python"'
    cpu = "instance_group [ { kind: KIND_CPU count: 1 } ]\n"
    seq_param = f'parameters {{ key: "max_seq" value: {{ string_value: "{max_seq}" }} }}\n'
    engine_tail = "instance_group [ { kind: KIND_GPU count: 1 } ]\n" if platform == "tensorrt_plan" else ""
    steps = [
        (
            TOKENIZER,
            {"text_input": "text_input"},
            {"input_ids": "_input_ids", "attention_mask": "_attention_mask"},
        ),
        (ENGINE, {"input_ids": "_input_ids", "attention_mask": "_attention_mask"}, {"logits": "_logits"}),
        (
            POSTPROCESSOR,
            {"logits": "_logits", "attention_mask": "_attention_mask"},
            {"next_token_id": "next_token_id", "text_output": "text_output"},
        ),
    ]
    step_text = ",\n".join(
        f'    {{\n      model_name: "{model}"\n      model_version: -1\n{_maps("input_map", ins)}'
        f"{_maps('output_map', outs)}    }}"
        for model, ins, outs in steps
    )
    return {
        TOKENIZER: _config(TOKENIZER, python, max_batch, (text_in,), (ids, mask), cpu + seq_param),
        ENGINE: _config(
            ENGINE,
            f'platform: "{platform}"\ndefault_model_filename: "{ENGINE_FILE[platform]}"',
            max_batch,
            (ids, mask),
            (logits,),
            engine_tail,
        ),
        POSTPROCESSOR: _config(POSTPROCESSOR, python, max_batch, (logits, mask), (token_out, text_out), cpu),
        ENSEMBLE: _config(
            ENSEMBLE,
            'platform: "ensemble"',
            max_batch,
            (text_in,),
            (token_out, text_out),
            f"ensemble_scheduling {{\n  step [\n{step_text}\n  ]\n}}\n",
        ),
    }


def write_repository(
    root: Path,
    *,
    engine_file: Path,
    onnx_for_signature: Path,
    tokenizer_dir: Path,
    max_batch: int,
    max_seq: int,
    platform: EnginePlatform,
) -> list[Path]:
    """Write the repository under root (which must not hold one already); returns the config files."""
    sig = onnx_signature(onnx_for_signature)
    configs = repository_configs(sig, max_batch=max_batch, max_seq=max_seq, platform=platform)
    here = Path(__file__).parent / "triton_models"
    written = []
    for model, text in configs.items():
        version = root / model / "1"
        version.mkdir(parents=True, exist_ok=True)
        (root / model / "config.pbtxt").write_text(text, encoding="utf-8")
        written.append(root / model / "config.pbtxt")
        if model in (TOKENIZER, POSTPROCESSOR):
            shutil.copyfile(here / f"{model}.py", version / "model.py")
            tok = version / "tokenizer"
            tok.mkdir(exist_ok=True)
            for name in TOKENIZER_FILES:
                if (tokenizer_dir / name).is_file():
                    shutil.copyfile(tokenizer_dir / name, tok / name)
    _place(engine_file, root / ENGINE / "1" / ENGINE_FILE[platform])
    return written


def _place(source: Path, target: Path) -> None:
    """Hard-link (else copy) the engine file, and an ONNX file's external data beside it."""
    data = source.parent / f"{source.name}.data"
    for src, dst in ((source, target), (data, target.parent / data.name)):
        if not src.is_file():
            continue
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)


def read_repository(root: Path) -> dict[str, dict[str, Any]]:
    return {
        p.parent.name: pbtxt.parse(p.read_text(encoding="utf-8")) for p in sorted(root.glob("*/config.pbtxt"))
    }


def _tensors(config: dict[str, Any], kind: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {
        t["name"]: (t["data_type"], tuple(pbtxt.as_list(t["dims"]))) for t in pbtxt.as_list(config.get(kind))
    }


def check_repository(root: Path) -> list[str]:
    """Problems: missing models or files; names, types or dims that disagree along the chain."""
    configs = read_repository(root)
    problems = [f"model '{m}' is missing ({root / m / 'config.pbtxt'})" for m in MODELS if m not in configs]
    for model, cfg in configs.items():
        if cfg.get("name") != model:
            problems.append(f"{model}/config.pbtxt: name is '{cfg.get('name')}', expected '{model}'")
        if not (root / model / "1").is_dir():
            problems.append(f"{model}: version folder 1/ is missing")
        if cfg.get("backend") == "python" and not (root / model / "1" / "model.py").is_file():
            problems.append(f"{model}: 1/model.py is missing")
        if (
            cfg.get("platform") in ENGINE_FILE
            and not (root / model / "1" / ENGINE_FILE[cfg["platform"]]).is_file()
        ):
            problems.append(f"{model}: 1/{ENGINE_FILE[cfg['platform']]} is missing")
    ens = configs.get(ENSEMBLE)
    if ens is None:
        return problems
    available = dict(_tensors(ens, "input"))  # ensemble tensor name -> (type, dims)
    for step in pbtxt.as_list(ens.get("ensemble_scheduling", {}).get("step")):
        name = step["model_name"]
        cfg = configs.get(name)
        if cfg is None:
            problems.append(f"ensemble step uses unknown model '{name}'")
            continue
        if cfg.get("max_batch_size", 0) < ens.get("max_batch_size", 0):
            problems.append(
                f"{name}: max_batch_size {cfg.get('max_batch_size')} < the ensemble's "
                f"{ens.get('max_batch_size')}"
            )
        ins, outs = _tensors(cfg, "input"), _tensors(cfg, "output")
        for pair in pbtxt.as_list(step.get("input_map")):
            key, value = pair["key"], pair["value"]
            if key not in ins:
                problems.append(f"ensemble -> {name}: '{key}' is not an input of {name}")
            elif value not in available:
                problems.append(f"ensemble -> {name}: '{value}' is produced by no earlier step")
            elif available[value] != ins[key]:
                problems.append(f"ensemble -> {name}.{key}: {available[value]} does not match {ins[key]}")
        for pair in pbtxt.as_list(step.get("output_map")):
            key, value = pair["key"], pair["value"]
            if key not in outs:
                problems.append(f"{name} -> ensemble: '{key}' is not an output of {name}")
            else:
                available[value] = outs[key]
    for out_name, spec in _tensors(ens, "output").items():
        if out_name not in available:
            problems.append(f"ensemble output '{out_name}' is produced by no step")
        elif available[out_name] != spec:
            problems.append(f"ensemble output '{out_name}': {available[out_name]} does not match {spec}")
    return problems
