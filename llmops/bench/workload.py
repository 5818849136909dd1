"""Prompts for a run, prepared (and tokenized, when a tokenizer is at hand) before the first request leaves.

Datasets: `random` (windows of the built-in prose, llmops/bench/corpus.txt, written for this project),
`jsonl:FILE` (the JSONL prompt format of `llmops batch`: {"prompt"} / {"messages"} lines or OpenAI batch
lines, read by `llmops.prompts`), `sharegpt:FILE`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from llmops.errors import NotFoundError, Problem, ProfileProblems, UsageError
from llmops.prompts import line_max_tokens, line_text, read_prompt_file

WORDS_PER_TOKEN = 0.75  # English prose with a BPE tokenizer; only used when no tokenizer is available


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


@dataclass
class Prompt:
    text: str
    messages: list[dict[str, Any]] | None = None
    input_tokens: int | None = None  # exact when tokenized, else None (the server's usage will say)
    output_len: int = 64


@cache
def builtin_text() -> str:
    return resources.files("llmops.bench").joinpath("corpus.txt").read_text(encoding="utf-8")


def random_prompts(
    n: int,
    input_len: int,
    output_len: int,
    *,
    prefix_len: int = 0,
    seed: int = 0,
    tokenizer: Tokenizer | None = None,
) -> list[Prompt]:
    """n distinct prompts of input_len tokens; the first prefix_len tokens are the same in all of them.

    Each prompt after the shared prefix starts with its own number, so prompts never share a longer prefix by
    accident (which would flatter a server with prefix caching).
    """
    if prefix_len > input_len:
        raise UsageError(
            f"--prefix-len {prefix_len} is longer than --input-len {input_len}",
            hint="the shared prefix is counted within the input length",
        )
    rng = random.Random(seed)
    text = builtin_text()
    if tokenizer is not None:
        ids = tokenizer.encode(text)
        prefix = _window(ids, 0, prefix_len)
        out = []
        for i in range(n):
            tag = tokenizer.encode(f" {i}. ")
            rest = max(0, input_len - prefix_len - len(tag))
            body = prefix + tag + _window(ids, rng.randrange(len(ids)), rest)
            out.append(
                Prompt(
                    tokenizer.decode(body[:input_len]),
                    input_tokens=min(len(body), input_len),
                    output_len=output_len,
                )
            )
        return out
    words = text.split()
    prefix_words = _window(words, 0, round(prefix_len * WORDS_PER_TOKEN))
    out = []
    for i in range(n):
        rest = max(1, round((input_len - prefix_len) * WORDS_PER_TOKEN) - 1)
        body = [*prefix_words, f"{i}.", *_window(words, rng.randrange(len(words)), rest)]
        out.append(Prompt(" ".join(body), output_len=output_len))
    return out


def _window(seq: list, start: int, length: int) -> list:
    """length items from start, wrapping around the end."""
    if length <= 0 or not seq:
        return []
    reps = (start + length) // len(seq) + 1
    return (seq * reps)[start : start + length]


def jsonl_prompts(path: Path, output_len: int | None, default_output_len: int) -> list[Prompt]:
    """Prompts from a JSONL file in the one prompt format `llmops batch` reads too (llmops.prompts)."""
    read = read_prompt_file(path, what="dataset file")
    if read.problems:
        raise ProfileProblems(read.problems[:10])
    out = []
    for entry in read.entries:
        text, messages = line_text(entry.line)
        if not text and not messages:
            raise ProfileProblems(
                [Problem(str(path), entry.number, None, 'needs "prompt" or "messages" (or a body with them)')]
            )
        n_out = output_len or line_max_tokens(entry.line) or default_output_len
        out.append(Prompt(text, messages=messages, output_len=int(n_out)))
    if not out:
        raise UsageError(f"dataset file {path} has no prompts", hint='one JSON object a line with "prompt"')
    return out


def sharegpt_prompts(
    path: Path,
    n: int,
    output_len: int | None,
    default_output_len: int,
    seed: int,
    tokenizer: Tokenizer | None,
) -> list[Prompt]:
    """First human turn as the prompt; the first reply's length as the output length (unless --output-len)."""
    if not path.is_file():
        raise NotFoundError(
            f"dataset file {path} not found", hint="give sharegpt:PATH to a ShareGPT JSON file"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}:{exc.lineno}: not JSON ({exc.msg})", hint="ShareGPT files are one JSON array"
        ) from exc
    if not isinstance(data, list):
        raise UsageError(f"{path}: expected a JSON array of conversations", hint="ShareGPT format")
    convs = [
        d["conversations"] for d in data if isinstance(d, dict) and len(d.get("conversations") or []) >= 2
    ]
    random.Random(seed).shuffle(convs)
    out = []
    for conv in convs:
        prompt, reply = str(conv[0].get("value", "")), str(conv[1].get("value", ""))
        if not prompt.strip():
            continue
        if output_len:
            n_out = output_len
        elif tokenizer is not None:
            n_out = len(tokenizer.encode(reply))
        else:
            n_out = round(len(reply.split()) / WORDS_PER_TOKEN)
        if n_out < 4:
            n_out = default_output_len if not reply.strip() else 4
        n_in = len(tokenizer.encode(prompt)) if tokenizer is not None else None
        out.append(Prompt(prompt, input_tokens=n_in, output_len=n_out))
        if len(out) >= n:
            break
    if not out:
        raise UsageError(
            f"{path}: no usable conversations", hint='entries need "conversations" with 2+ turns'
        )
    return out


def load_prompts(
    dataset: str,
    *,
    n: int,
    input_len: int,
    output_len: int | None,
    default_output_len: int,
    prefix_len: int,
    seed: int,
    tokenizer: Tokenizer | None,
) -> list[Prompt]:
    """Dispatch on the dataset spec: random, jsonl:FILE, sharegpt:FILE."""
    kind, _, arg = dataset.partition(":")
    if kind == "random":
        return random_prompts(
            n,
            input_len,
            output_len or default_output_len,
            prefix_len=prefix_len,
            seed=seed,
            tokenizer=tokenizer,
        )
    if kind == "jsonl" and arg:
        return jsonl_prompts(Path(arg), output_len, default_output_len)
    if kind == "sharegpt" and arg:
        return sharegpt_prompts(Path(arg), n, output_len, default_output_len, seed, tokenizer)
    raise UsageError(f"unknown dataset '{dataset}'", hint="use random, jsonl:FILE or sharegpt:FILE")


class _HfTokenizer:
    """A Hugging Face tokenizer counting content tokens only (no BOS/EOS added)."""

    def __init__(self, tok: Any) -> None:
        self.tok = tok

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids)


def load_tokenizer(source: Any) -> Tokenizer | None:
    """The model's tokenizer (llmops.hf, local files only), or None: a tokenizer is a nicety here, and
    without one counts come from the server's usage or the streamed chunks."""
    from llmops.errors import LlmopsError
    from llmops.hf.loading import quiet_libraries, tokenizer_for

    quiet_libraries(verbose=False)  # its advice about tokenizer options is noise in a benchmark report
    try:
        return _HfTokenizer(tokenizer_for(source))
    except (LlmopsError, OSError, ValueError, KeyError, ImportError):
        return None
