"""Pure conversions between the input forms and the providers' own shapes.

Everything converges on the OpenAI batch line format: plain lines become request lines, Anthropic
results become OpenAI output lines, so results look the same from every backend.
"""

from __future__ import annotations

from typing import Any

from llmops.batch.models import ChatUrl, ErrorPart, OutputLine, ResponsePart
from llmops.prompts import PromptLine, RequestLine, prompt_messages

SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
)


def plain_to_request(
    line: PromptLine, number: int, *, model: str | None, defaults: dict[str, Any]
) -> RequestLine:
    """A `{"prompt"}` / `{"messages"}` line as a chat-completions request line; the line's fields beat the
    model profile's sampling defaults (`output_len` is the same as `max_tokens`)."""
    body: dict[str, Any] = {"model": line.model or model, "messages": prompt_messages(line)}
    for key, value in defaults.items():
        body.setdefault(key, value)
    for key in SAMPLING_FIELDS:
        value = line.max_output if key == "max_tokens" else getattr(line, key)
        if value is not None:
            body[key] = value
    if body["model"] is None:
        del body["model"]
    return RequestLine(custom_id=line.custom_id or f"request-{number}", method="POST", url=ChatUrl, body=body)


# --- OpenAI chat body -> Anthropic Messages params ----------------------------------------------

ANTHROPIC_PASSTHROUGH = ("temperature", "top_p", "top_k", "metadata")
IGNORED_FOR_ANTHROPIC = (
    "n",
    "stream",
    "user",
    "repetition_penalty",
    "seed",
    "frequency_penalty",
    "presence_penalty",
)


def _text_of(content: Any) -> Any:
    """OpenAI content: a string or a list of parts. Text parts carry over as Anthropic text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        blocks = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise ValueError(
                    "only text content parts convert to Anthropic (got "
                    f"{part.get('type') if isinstance(part, dict) else type(part).__name__})"
                )
            blocks.append({"type": "text", "text": part["text"]})
        return blocks
    raise ValueError("message content must be a string or a list of text parts")


def chat_to_anthropic(body: dict[str, Any], *, default_max_tokens: int | None = None) -> dict[str, Any]:
    """Messages API params from an OpenAI chat body: system messages pulled out, max_tokens required.

    Raises ValueError naming the field that cannot be converted.
    """
    params: dict[str, Any] = {}
    if not body.get("model"):
        raise ValueError("body.model is missing; pass --model")
    params["model"] = body["model"]
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens", default_max_tokens))
    if max_tokens is None:
        raise ValueError("body.max_tokens is required by Anthropic; add it to the line or pass --max-tokens")
    params["max_tokens"] = max_tokens
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("body.messages must be a non-empty list")
    system: list[str] = []
    converted: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg:
            raise ValueError(f"body.messages[{i}] needs a role")
        role = msg["role"]
        if role in ("system", "developer"):
            content = _text_of(msg.get("content"))
            system.append(content if isinstance(content, str) else "\n".join(b["text"] for b in content))
        elif role in ("user", "assistant"):
            converted.append({"role": role, "content": _text_of(msg.get("content"))})
        else:
            raise ValueError(
                f"body.messages[{i}].role '{role}' has no Anthropic equivalent (use system, user, assistant)"
            )
    if not converted:
        raise ValueError("body.messages has no user message")
    params["messages"] = converted
    if system:
        params["system"] = "\n\n".join(system)
    temperature = body.get("temperature")
    if temperature is not None and temperature > 1:
        raise ValueError(f"body.temperature {temperature} is over Anthropic's maximum of 1")
    for key in ANTHROPIC_PASSTHROUGH:
        if body.get(key) is not None:
            params[key] = body[key]
    stop = body.get("stop")
    if stop:
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("n", 1) != 1:
        raise ValueError("body.n must be 1 for Anthropic")
    known = {
        "model",
        "max_tokens",
        "max_completion_tokens",
        "messages",
        "stop",
        *ANTHROPIC_PASSTHROUGH,
        *IGNORED_FOR_ANTHROPIC,
    }
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValueError(f"body.{unknown[0]} has no Anthropic Messages equivalent; remove it")
    return params


# --- Anthropic result line -> OpenAI output line ------------------------------------------------

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def message_to_chat_completion(message: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Message as an OpenAI chat.completion body (text blocks joined)."""
    text = "".join(b.get("text", "") for b in message.get("content", []) if b.get("type") == "text")
    usage = message.get("usage") or {}
    prompt, completion = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": STOP_REASONS.get(message.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def anthropic_result_to_output(line: dict[str, Any], batch_id: str) -> OutputLine:
    """One line of Anthropic's results stream as an OpenAI batch output line."""
    custom_id = line["custom_id"]
    result = line.get("result") or {}
    kind = result.get("type")
    line_id = f"{batch_id}:{custom_id}"
    if kind == "succeeded":
        message = result["message"]
        return OutputLine(
            id=line_id,
            custom_id=custom_id,
            response=ResponsePart(
                status_code=200, request_id=message.get("id"), body=message_to_chat_completion(message)
            ),
        )
    if kind == "errored":
        envelope = result.get("error") or {}
        err = envelope.get("error") or {}
        status = ERROR_STATUS.get(err.get("type", ""), 500)
        return OutputLine(
            id=line_id,
            custom_id=custom_id,
            response=ResponsePart(
                status_code=status,
                request_id=envelope.get("request_id"),
                body={"error": {"type": err.get("type"), "message": err.get("message")}},
            ),
        )
    if kind == "canceled":
        return error_line(
            custom_id, "batch_cancelled", "the batch was cancelled before this request ran", batch_id
        )
    if kind == "expired":
        return error_line(custom_id, "batch_expired", "the batch expired before this request ran", batch_id)
    return error_line(custom_id, "unknown_result", f"unknown Anthropic result type {kind!r}", batch_id)


def error_line(custom_id: str, code: str, message: str, batch_id: str = "llmops") -> OutputLine:
    """A request that produced no response (expired, cancelled, failed batch, network error)."""
    return OutputLine(
        id=f"{batch_id}:{custom_id}", custom_id=custom_id, error=ErrorPart(code=code, message=message)
    )


def usage_of(line: OutputLine) -> tuple[int, int]:
    """(prompt, completion) tokens an output line reports, 0 where it reports none."""
    if line.response is None or not line.response.body:
        return 0, 0
    usage = line.response.body.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
