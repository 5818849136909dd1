"""One streamed answer, read event by event as it arrives, with its timings, tokens and logprobs.

The bytes come from bench's streaming client (`StreamingClient.request(..., on_event=...)`); this module
only turns each event's JSON into text pieces for an observer and the figures of an `Answer`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.sampling.confidence import band, confidence

GATEWAY_HEADERS = ("x-llmops-route", "x-llmops-deployment", "x-llmops-cache")


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)  # alternatives, likeliest first


@dataclass
class Answer:
    """What one request returned, and how fast; partial when cancelled or cut off."""

    text: str = ""
    finish_reason: str | None = None  # normalised: stop | length | stop_sequence | <the server's word>
    stop_sequence: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    output_tokens_from: str = "usage"  # usage | logprobs | chunks
    ttft_s: float | None = None
    duration_s: float | None = None
    tokens_per_s: float | None = None
    logprobs: list[TokenLogprob] | None = None  # None: not asked, or not returned
    logprobs_asked: bool = False
    system_fingerprint: str | None = None
    gateway: dict[str, str] = field(default_factory=dict)  # route / deployment / cache headers
    status: int = 0
    error: str | None = None  # kind: connect, timeout, http_404, stream_error, disconnected, ...
    detail: str | None = None
    cancelled: bool = False
    cost_usd: float | None = None
    piece_times: list[float] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled

    @property
    def confidence(self) -> float | None:
        if not self.logprobs:
            return None
        return confidence([t.logprob for t in self.logprobs])

    def as_json(self) -> dict[str, Any]:
        conf = self.confidence
        doc: dict[str, Any] = {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "stop_sequence": self.stop_sequence,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "output_tokens_from": self.output_tokens_from,
            "ttft_ms": None if self.ttft_s is None else round(self.ttft_s * 1000, 2),
            "duration_ms": None if self.duration_s is None else round(self.duration_s * 1000, 2),
            "tokens_per_s": None if self.tokens_per_s is None else round(self.tokens_per_s, 2),
            "cost_usd": self.cost_usd,
            "system_fingerprint": self.system_fingerprint,
            "gateway": self.gateway,
            "error": self.error,
            "detail": self.detail,
            "cancelled": self.cancelled,
        }
        if self.logprobs_asked:
            doc["logprobs_returned"] = self.logprobs is not None
            doc["confidence"] = None if conf is None else round(conf, 4)
            doc["confidence_band"] = None if conf is None else band(conf)
            doc["tokens"] = [
                {
                    "token": t.token,
                    "logprob": t.logprob,
                    "top": [{"token": a, "logprob": lp} for a, lp in t.top],
                }
                for t in self.logprobs or []
            ]
        return doc


class PieceObserver(Protocol):
    """Sees the answer grow: each text piece with the logprobs of the tokens in it (empty when none)."""

    def piece(self, text: str, tokens: list[TokenLogprob]) -> None: ...


_FINISH = {
    "end_turn": "stop",
    "stop": "stop",
    "eos": "stop",
    "max_tokens": "length",
    "length": "length",
    "stop_sequence": "stop_sequence",
}


class EventReader:
    """Turns the events of one chat-completions or Anthropic Messages stream into an Answer."""

    def __init__(self, endpoint: str, answer: Answer, observer: PieceObserver | None) -> None:
        self.endpoint = endpoint
        self.answer = answer
        self.observer = observer
        self.failure: BaseException | None = None  # an observer's error, re-raised after the request

    def __call__(self, data: bytes, now: float) -> None:
        try:
            doc = json.loads(data)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        if self.endpoint == "anthropic":
            self._anthropic(doc, now)
        else:
            self._chat(doc, now)

    def _emit(self, text: str, tokens: list[TokenLogprob], now: float) -> None:
        a = self.answer
        if not text and not tokens:
            return
        a.text += text
        a.piece_times.append(now)
        if tokens:
            if a.logprobs is None:
                a.logprobs = []
            a.logprobs += tokens
        if self.observer is not None and self.failure is None:
            try:
                self.observer.piece(text, tokens)
            except BaseException as exc:  # e.g. a closed stdout: stop showing, finish the request cleanly
                self.failure = exc

    def _chat(self, doc: dict[str, Any], now: float) -> None:
        a = self.answer
        if isinstance(doc.get("error"), dict | str):
            err = doc["error"]
            a.error = "stream_error"
            a.detail = err.get("message", str(err)) if isinstance(err, dict) else str(err)
            return
        if doc.get("system_fingerprint"):
            a.system_fingerprint = str(doc["system_fingerprint"])
        usage = doc.get("usage")
        if isinstance(usage, dict):
            a.input_tokens = usage.get("prompt_tokens", a.input_tokens)
            a.output_tokens = usage.get("completion_tokens", a.output_tokens)
        for ch in doc.get("choices") or []:
            if not isinstance(ch, dict) or ch.get("index", 0) != 0:
                continue
            delta = ch.get("delta") or {}
            text = (delta.get("content") or "") if isinstance(delta, dict) else ""
            self._emit(text, _chat_logprobs(ch.get("logprobs")), now)
            if ch.get("finish_reason"):
                a.finish_reason = _FINISH.get(ch["finish_reason"], ch["finish_reason"])
                reason = ch.get("stop_reason")  # vLLM: the stop string that matched
                if isinstance(reason, str) and reason:
                    a.finish_reason, a.stop_sequence = "stop_sequence", reason

    def _anthropic(self, doc: dict[str, Any], now: float) -> None:
        a = self.answer
        kind = doc.get("type")
        if kind == "message_start":
            usage = (doc.get("message") or {}).get("usage") or {}
            a.input_tokens = usage.get("input_tokens", a.input_tokens)
        elif kind == "content_block_delta":
            delta = doc.get("delta") or {}
            if delta.get("type") == "text_delta":
                self._emit(delta.get("text") or "", [], now)
        elif kind == "message_delta":
            delta = doc.get("delta") or {}
            if delta.get("stop_reason"):
                a.finish_reason = _FINISH.get(delta["stop_reason"], delta["stop_reason"])
                a.stop_sequence = delta.get("stop_sequence")
            a.output_tokens = (doc.get("usage") or {}).get("output_tokens", a.output_tokens)
        elif kind == "error":
            err = doc.get("error") or {}
            a.error, a.detail = "stream_error", err.get("message") or json.dumps(err)


def _chat_logprobs(block: Any) -> list[TokenLogprob]:
    """OpenAI chat logprobs: {"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]}."""
    if not isinstance(block, dict):
        return []
    out = []
    for item in block.get("content") or []:
        if not isinstance(item, dict) or item.get("logprob") is None:
            continue
        top = [
            (str(t.get("token", "")), float(t["logprob"]))
            for t in item.get("top_logprobs") or []
            if isinstance(t, dict) and t.get("logprob") is not None
        ]
        top.sort(key=lambda x: -x[1])
        out.append(TokenLogprob(str(item.get("token", "")), float(item["logprob"]), top))
    return out


def header_values(head: bytes, names: tuple[str, ...] = GATEWAY_HEADERS) -> dict[str, str]:
    """The named response headers (lower-cased names) from a raw header block."""
    found: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        key = k.strip().lower().decode("latin-1")
        if key in names:
            found[key.removeprefix("x-llmops-")] = v.strip().decode("latin-1")
    return found
