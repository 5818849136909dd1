"""Errors in the shape of the API the client called: OpenAI `{"error": {...}}` or Anthropic `{"type": "error"}`."""

from __future__ import annotations

import json
from typing import Any

# OpenAI error types by status; Anthropic's are named by what went wrong.
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class GatewayError(Exception):
    """A request the gateway answers itself with an error (never a crash)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.reason = reason  # for metrics: connect, timeout, status_5xx, ...


def error_type(api: str, status: int) -> str:
    if api == "messages":
        return _ANTHROPIC_TYPES.get(status, "api_error")
    return _OPENAI_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_doc(
    api: str,
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    etype: str | None = None,
) -> dict[str, Any]:
    etype = etype or error_type(api, status)
    if api == "messages":
        return {"type": "error", "error": {"type": etype, "message": message}}
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def error_body(api: str, status: int, message: str, **kw: Any) -> bytes:
    return json.dumps(error_doc(api, status, message, **kw)).encode()


def stream_error_event(api: str, status: int, message: str, code: str | None = None) -> bytes:
    """The SSE event that ends a broken stream; the official SDKs raise it as an error."""
    doc = json.dumps(error_doc(api, status, message, code=code))
    if api == "messages":
        return b"event: error\ndata: " + doc.encode() + b"\n\n"
    return b"data: " + doc.encode() + b"\n\n"
