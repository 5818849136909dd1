"""Match a request's or a reply's text against the named rules; no I/O, no state, testable alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from llmops.gateway.guard.normalize import fold, fold_keep_case, leet
from llmops.gateway.guard.rules import BASELINE_RULES, PROVIDER_KEY_RULE, Rule

# Roles whose text the client controls and the model reads as input. System prompts are the
# application's own (and legitimately say "you are a ... assistant"); assistant turns are the model's.
SCREENED_ROLES = frozenset({"user", "tool", "function"})
MIN_SECRET_LEN = 12  # shorter "keys" (test placeholders) would match ordinary words


@dataclass(frozen=True)
class Match:
    rule: str
    where: str  # "messages[2]", "prompt", "response"


def _text(content: Any) -> str:
    """The text of an OpenAI or Anthropic content value (a string or a list of parts/blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    out.append(part["text"])
                elif part.get("type") == "tool_result":
                    out.append(_text(part.get("content")))
            elif isinstance(part, str):
                out.append(part)
        return "\n".join(out)
    return ""


def request_texts(api: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, text) for every client-controlled input the model will read."""
    if api == "completions":
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else [p for p in prompt or [] if isinstance(p, str)]
        return [(f"prompt[{i}]", p) for i, p in enumerate(prompts)]
    out = []
    for i, m in enumerate(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") in SCREENED_ROLES and (text := _text(m.get("content"))):
            out.append((f"messages[{i}]", text))
    return out


def response_text(api: str, doc: dict[str, Any]) -> str:
    """Everything a reply says: message text, tool-call arguments, completion text."""
    parts: list[str] = []
    if api == "messages":
        for block in doc.get("content") or []:
            if isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif block.get("type") == "tool_use":
                    parts.append(str(block.get("input")))
        return "\n".join(parts)
    for choice in doc.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("text"), str):
            parts.append(choice["text"])
        msg = choice.get("message") or {}
        if isinstance(msg.get("content"), str):
            parts.append(msg["content"])
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                parts.append(str(fn.get("arguments", "")))
    return "\n".join(parts)


class Screen:
    """The compiled rule set plus the gateway's own provider keys (held in memory, never logged)."""

    def __init__(self, rules: Iterable[Rule] = BASELINE_RULES, secrets: Iterable[str] = ()) -> None:
        rules = list(rules)
        self.request_rules = [r for r in rules if r.target == "request"]
        self.response_rules = [r for r in rules if r.target == "response"]
        self._secrets = tuple(sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}))

    def check_text(self, text: str) -> list[str]:
        """Names of the request rules the text matches (after folding, and its leetspeak reading)."""
        folded = fold(text)
        variants = (folded, leet(folded))
        return [r.name for r in self.request_rules if any(r.pattern.search(v) for v in variants)]

    def check_request(self, api: str, body: dict[str, Any]) -> list[Match]:
        out: list[Match] = []
        seen: set[str] = set()
        for where, text in request_texts(api, body):
            for name in self.check_text(text):
                if name not in seen:
                    seen.add(name)
                    out.append(Match(name, where))
        return out

    def check_reply_text(self, text: str) -> list[str]:
        """Names of the leak rules the reply's text matches (provider keys compared in memory)."""
        plain = fold_keep_case(text)
        names = [r.name for r in self.response_rules if r.pattern.search(plain)]
        if self._secrets and any(s in text or s in plain for s in self._secrets):
            names.append(PROVIDER_KEY_RULE)
        return names

    def check_response(self, api: str, doc: dict[str, Any]) -> list[Match]:
        return [Match(name, "response") for name in self.check_reply_text(response_text(api, doc))]
