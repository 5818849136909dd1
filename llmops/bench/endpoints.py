"""The kinds of endpoint bench can drive: how to address one, build its request body, and read its stream."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llmops.bench.sse import SCANNERS, Scanner
from llmops.bench.workload import Prompt
from llmops.sampling.params import SAMPLING_FIELDS

ANTHROPIC_VERSION = "2023-06-01"
_OPENAI_SAMPLING = (*SAMPLING_FIELDS, "repeat_penalty")  # llmops.sampling's list; llama.cpp's name
_ANTHROPIC_SAMPLING = ("temperature", "top_p", "top_k")


def normalize_target(url: str, endpoint: str) -> str:
    """Base URL without credentials or query: OpenAI kinds end in /v1; Anthropic's is the API root."""
    u = urlsplit(url.strip())
    path = u.path.rstrip("/")
    netloc = u.netloc.rsplit("@", 1)[-1]
    if endpoint == "anthropic":
        path = path.removesuffix("/v1")
    elif not path.endswith("/v1"):
        path += "/v1"
    return urlunsplit((u.scheme, netloc, path, "", ""))


def server_root(base_url: str) -> str:
    """Where /metrics lives: the base URL without /v1."""
    u = urlsplit(base_url)
    return urlunsplit((u.scheme, u.netloc, u.path.rstrip("/").removesuffix("/v1"), "", ""))


@dataclass(frozen=True)
class Endpoint:
    kind: str  # chat | completions | anthropic
    base_url: str

    @property
    def path(self) -> str:
        base = urlsplit(self.base_url).path.rstrip("/")
        return {
            "chat": f"{base}/chat/completions",
            "completions": f"{base}/completions",
            "anthropic": f"{base}/v1/messages",
        }[self.kind]

    def scanner(self) -> Scanner:
        return SCANNERS[self.kind]()

    def headers(self, api_key: str | None) -> dict[str, str]:
        if self.kind == "anthropic":
            return {"x-api-key": api_key or "", "anthropic-version": ANTHROPIC_VERSION}
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def body(self, prompt: Prompt, model: str, sampling: dict[str, Any], ignore_eos: bool) -> bytes:
        return json.dumps(self.body_dict(prompt, model, sampling, ignore_eos), separators=(",", ":")).encode()

    def body_dict(
        self, prompt: Prompt, model: str, sampling: dict[str, Any], ignore_eos: bool
    ) -> dict[str, Any]:
        if self.kind == "anthropic":
            msgs = prompt.messages or [{"role": "user", "content": prompt.text}]
            system = [m for m in msgs if m.get("role") == "system"]
            body: dict[str, Any] = {
                "model": model,
                "max_tokens": prompt.output_len,
                "messages": [m for m in msgs if m.get("role") != "system"],
                "stream": True,
            }
            if system:
                body["system"] = "\n".join(str(m.get("content", "")) for m in system)
            body.update({k: sampling[k] for k in _ANTHROPIC_SAMPLING if sampling.get(k) is not None})
            if sampling.get("stop"):
                body["stop_sequences"] = sampling["stop"]
            return body
        body = {"model": model}
        if self.kind == "chat":
            body["messages"] = prompt.messages or [{"role": "user", "content": prompt.text}]
        else:
            body["prompt"] = prompt.text
        body.update(
            {"max_tokens": prompt.output_len, "stream": True, "stream_options": {"include_usage": True}}
        )
        body.update({k: sampling[k] for k in _OPENAI_SAMPLING if sampling.get(k) is not None})
        if ignore_eos:
            body["ignore_eos"] = True
        return body
