"""Calibration and evaluation texts: the user's file (plain text or JSONL) or the built-in ones.

The built-in texts are original prose written for llmops (no third-party text, nothing downloaded);
calibration and evaluation use different texts so the perplexity is measured on held-out words.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from llmops.errors import UsageError

BUILTIN_CALIBRATION = "builtin:calibration"
BUILTIN_EVAL = "builtin:eval"
JSONL_KEYS = ("text", "content", "prompt")


@dataclass(frozen=True)
class TextSet:
    """A text and where it came from; `sha256` is over the bytes as read, so a report pins the exact data."""

    name: str
    text: str
    sha256: str
    documents: int


def builtin(name: str) -> TextSet:
    """The shipped calibration text (llmops.quantize) or evaluation text (llmops.hf)."""
    package, filename = (
        ("llmops.quantize", "calibration.txt") if name == BUILTIN_CALIBRATION else ("llmops.hf", "eval.txt")
    )
    data = resources.files(package).joinpath("data", filename).read_bytes()
    return TextSet(name, data.decode("utf-8"), hashlib.sha256(data).hexdigest(), 1)


def read_text_set(path: Path, what: str) -> TextSet:
    """A user's text file (.txt, .md, ...) or JSONL (one {"text": ...} or a string per line).

    Refuses, with file and line, what cannot be calibration or evaluation data: a missing file,
    an empty one, bytes that are not UTF-8 text, or JSONL lines without text.
    """
    if not path.is_file():
        raise UsageError(f"{what} file {path} does not exist", hint="give a UTF-8 text or JSONL file")
    data = path.read_bytes()
    if b"\x00" in data:
        raise UsageError(
            f"{what} file {path} is not text (it contains NUL bytes)", hint="give a UTF-8 text or JSONL file"
        )
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(
            f"{path}:{line}: {what} file is not UTF-8 text (byte {exc.start})",
            hint="convert it to UTF-8, e.g. iconv -t UTF-8",
        ) from exc
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        documents = _jsonl_documents(path, raw, what)
    else:
        documents = [raw] if raw.strip() else []
    if not documents:
        raise UsageError(f"{what} file {path} is empty", hint="give a file with some prose in it")
    return TextSet(str(path), "\n\n".join(documents), hashlib.sha256(data).hexdigest(), len(documents))


def _jsonl_documents(path: Path, raw: str, what: str) -> list[str]:
    documents = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{path}:{number}: not valid JSON ({exc.msg})",
                hint='write one JSON object per line, e.g. {"text": "..."}',
            ) from exc
        text = (
            item
            if isinstance(item, str)
            else next(
                (item[k] for k in JSONL_KEYS if isinstance(item, dict) and isinstance(item.get(k), str)), None
            )
        )
        if text is None:
            raise UsageError(
                f"{path}:{number}: {what} line has no text",
                hint=f"give a string or an object with one of {', '.join(JSONL_KEYS)}",
            )
        if text.strip():
            documents.append(text)
    return documents


def load_text_set(given: str | Path | None, default: str, what: str) -> TextSet:
    if given is None or str(given) == default:
        return builtin(default)
    return read_text_set(Path(given).expanduser(), what)


def token_windows(ids: list[int], samples: int, seq_len: int) -> list[list[int]]:
    """`samples` windows of `seq_len` tokens spread evenly over the text (overlapping when it is short)."""
    if len(ids) < seq_len:
        raise ValueError(f"{len(ids)} tokens, fewer than one window of {seq_len}")
    span = len(ids) - seq_len
    starts = [0] if samples == 1 else sorted({round(i * span / (samples - 1)) for i in range(samples)})
    return [ids[s : s + seq_len] for s in starts]
