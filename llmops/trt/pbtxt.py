"""A small reader for Triton's config.pbtxt (protobuf text format), enough to check a model repository.

Messages become dicts; a field that appears more than once (or is written as a `[...]` list) becomes a list.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r'\s*(?:#[^\n]*\n?)*\s*("(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"#]+)')


def tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            break
        tokens.append(match.group(1))
        pos = match.end()
    if text[pos:].strip() and not text[pos:].lstrip().startswith("#"):
        raise ValueError(f"cannot parse near: {text[pos : pos + 30]!r}")
    return tokens


def _scalar(token: str) -> Any:
    if token.startswith('"'):
        return bytes(token[1:-1], "utf-8").decode("unicode_escape")
    if token in ("true", "false"):
        return token == "true"
    try:
        return int(token)
    except ValueError:
        try:
            return float(token)
        except ValueError:
            return token  # an enum name such as TYPE_FP32 or KIND_GPU


def parse(text: str) -> dict[str, Any]:
    tokens = tokenize(text)
    msg, _ = _message(tokens, 0, top=True)
    return msg


def _add(msg: dict[str, Any], key: str, value: Any, listed: bool = False) -> None:
    if key in msg:
        if not isinstance(msg[key], list) or not msg.get(f"__list_{key}"):
            msg[key] = [msg[key]] if not isinstance(msg[key], list) else msg[key]
            msg[f"__list_{key}"] = True
        msg[key].extend(value if listed else [value])
    else:
        msg[key] = value
        if listed:
            msg[f"__list_{key}"] = True


def _message(tokens: list[str], pos: int, top: bool = False) -> tuple[dict[str, Any], int]:
    msg: dict[str, Any] = {}
    while pos < len(tokens):
        key = tokens[pos]
        if key == "}":
            if top:
                raise ValueError("unbalanced '}'")
            return _clean(msg), pos + 1
        pos += 1
        if pos < len(tokens) and tokens[pos] == ":":
            pos += 1
        if pos >= len(tokens):
            raise ValueError(f"field '{key}' has no value")
        if tokens[pos] == "{":
            value, pos = _message(tokens, pos + 1)
            _add(msg, key, value)
        elif tokens[pos] == "[":
            items, pos = _list(tokens, pos + 1)
            _add(msg, key, items, listed=True)
        else:
            _add(msg, key, _scalar(tokens[pos]))
            pos += 1
        if pos < len(tokens) and tokens[pos] in (",", ";"):
            pos += 1
    if not top:
        raise ValueError("missing '}'")
    return _clean(msg), pos


def _list(tokens: list[str], pos: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while pos < len(tokens) and tokens[pos] != "]":
        if tokens[pos] == ",":
            pos += 1
            continue
        if tokens[pos] == "{":
            value, pos = _message(tokens, pos + 1)
            items.append(value)
        else:
            items.append(_scalar(tokens[pos]))
            pos += 1
    if pos >= len(tokens):
        raise ValueError("missing ']'")
    return items, pos + 1


def _clean(msg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in msg.items() if not k.startswith("__list_")}


def as_list(value: Any) -> list[Any]:
    """A repeated field as a list, whether it appeared once or many times."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
