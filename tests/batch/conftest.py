"""Fakes for the HTTP layer only: an OpenAI-compatible chat server, and the OpenAI Batch and Anthropic
Message Batches APIs, with payloads shaped as their API references show. All on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

OPENAI_KEY = "sk-test-OPENAI-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-test-ANTHROPIC-0123456789"


class FakeServer:
    """A threaded HTTP server on loopback dispatching to `handle(method, path, headers, body)`.

    `port` 0 picks a free one; `close_connections` answers `Connection: close` (no keep-alive), so a
    stopped server refuses the client's very next request."""

    def __init__(self, port: int = 0, close_connections: bool = False) -> None:
        fake = self
        self.close_connections = close_connections

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _do(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = fake.handle(method, self.path, self.headers, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                if fake.close_connections:
                    headers["Connection"] = "close"
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._do("GET")

            def do_POST(self) -> None:
                self._do("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.lock = threading.Lock()
        self.seen_headers: list[dict[str, str]] = []
        self.odd: dict[str, Any] = {}  # operation -> payload answered instead (the operation still happens)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict, Any]:
        raise NotImplementedError

    def _answer(self, operation: str, payload: Any) -> tuple[int, dict, Any]:
        """200 with the payload, or with the odd one a test set for this operation (`self.odd`)."""
        return 200, {}, self.odd.get(operation, payload)


# --- an OpenAI-compatible chat server (for the local runner) -----------------------------------


def chat_completion(text: str, model: str, prompt_tokens: int = 5, completion_tokens: int = 3) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class ChatServer(FakeServer):
    """Answers /v1/chat/completions with an echo of the last user message.

    `fault(marker, attempt) -> (status, headers) | None` injects failures; every hit is recorded as
    (monotonic time, marker, status).
    """

    def __init__(
        self,
        delay: float = 0.0,
        fault: Callable[[str, int], tuple[int, dict] | None] | None = None,
        port: int = 0,
        close_connections: bool = False,
    ) -> None:
        super().__init__(port, close_connections)
        self.delay = delay
        self.fault = fault
        self.hits: list[tuple[float, str, int]] = []
        self.attempts: dict[str, int] = {}

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict, Any]:
        if method == "GET" and path == "/v1/models":
            return 200, {}, {"object": "list", "data": [{"id": "fake", "object": "model"}]}
        if method != "POST" or path != "/v1/chat/completions":
            return (
                404,
                {},
                {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error"}},
            )
        req = json.loads(body)
        marker = req["messages"][-1]["content"]
        with self.lock:
            self.seen_headers.append(dict(headers))
            attempt = self.attempts.get(marker, 0)
            self.attempts[marker] = attempt + 1
        injected = self.fault(marker, attempt) if self.fault else None
        if injected is not None:
            status, extra = injected
            with self.lock:
                self.hits.append((time.monotonic(), marker, status))
            return status, extra, {"error": {"message": "injected", "type": "server_error"}}
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.hits.append((time.monotonic(), marker, 200))
        return (
            200,
            {"x-request-id": f"req_{uuid.uuid4().hex[:8]}"},
            chat_completion(f"echo: {marker}", req["model"]),
        )

    def successes(self) -> list[str]:
        return [m for _, m, s in self.hits if s == 200]


@pytest.fixture
def chat_server() -> Iterator[Callable[..., ChatServer]]:
    servers: list[ChatServer] = []

    def make(**kwargs: Any) -> ChatServer:
        server = ChatServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


# --- the OpenAI Batch API ----------------------------------------------------------------------


def parse_multipart(headers: Any, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    msg = email.message_from_bytes(
        b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body, policy=email.policy.HTTP
    )
    fields = {}
    for part in msg.iter_parts():
        fields[part.get_param("name", header="content-disposition")] = (
            part.get_filename(),
            part.get_payload(decode=True),
        )
    return fields


class FakeOpenAI(FakeServer):
    """Files (purpose batch) and Batches as OpenAI's API reference shows them.

    The batch moves validating -> in_progress -> finalizing -> `outcome` over successive retrieves.
    outcome: completed | expired | cancelled (via cancel) | failed (validation). A request whose last message
    says "FAIL" fails with a 400 in the error file; on expiry, requests after the first `done_before_expiry`
    have no output and appear in the error file as batch_expired.
    """

    def __init__(self, outcome: str = "completed", done_before_expiry: int = 1) -> None:
        super().__init__()
        self.outcome = outcome
        self.done_before_expiry = done_before_expiry
        self.files: dict[str, dict] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.steps: dict[str, int] = {}
        self.created = 0

    def _file(self, data: bytes, filename: str, purpose: str) -> dict:
        fid = f"file-{uuid.uuid4().hex[:24]}"
        obj = {
            "id": fid,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self.files[fid] = obj
        self.contents[fid] = data
        return obj

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict, Any]:
        self.seen_headers.append(dict(headers))
        if headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
            return (
                401,
                {},
                {
                    "error": {
                        "message": "Incorrect API key provided.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            )
        path = path.split("?")[0]
        with self.lock:
            if method == "POST" and path == "/v1/files":
                fields = parse_multipart(headers, body)
                if fields["purpose"][1] != b"batch":
                    return (
                        400,
                        {},
                        {"error": {"message": "purpose must be batch", "type": "invalid_request_error"}},
                    )
                return 200, {}, self._file(fields["file"][1], fields["file"][0], "batch")
            if method == "POST" and path == "/v1/batches":
                return self._answer("create", self._create(json.loads(body)))
            if method == "GET" and path == "/v1/batches":
                data = list(reversed(self.batches.values()))
                return (
                    200,
                    {},
                    {
                        "object": "list",
                        "data": data,
                        "first_id": data[0]["id"] if data else None,
                        "last_id": data[-1]["id"] if data else None,
                        "has_more": False,
                    },
                )
            if m := re.fullmatch(r"/v1/batches/([^/]+)", path):
                return self._answer("retrieve", self._advance(m.group(1)))
            if m := re.fullmatch(r"/v1/batches/([^/]+)/cancel", path):
                batch = self.batches[m.group(1)]
                batch.update(status="cancelling", cancelling_at=int(time.time()))
                return self._answer("cancel", batch)
            if m := re.fullmatch(r"/v1/files/([^/]+)/content", path):
                return 200, {"Content-Type": "application/octet-stream"}, self.contents[m.group(1)]
        return 404, {}, {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error"}}

    def _create(self, params: dict) -> dict:
        assert params["completion_window"] == "24h"
        assert self.files[params["input_file_id"]]["purpose"] == "batch"
        self.created += 1
        now = int(time.time())
        bid = f"batch_{uuid.uuid4().hex[:24]}"
        batch = {
            "id": bid,
            "object": "batch",
            "endpoint": params["endpoint"],
            "errors": None,
            "input_file_id": params["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": params.get("metadata"),
        }
        self.batches[bid] = batch
        self.steps[bid] = 0
        return batch

    def _advance(self, bid: str) -> dict:
        batch = self.batches[bid]
        now = int(time.time())
        requests = [json.loads(x) for x in self.contents[batch["input_file_id"]].decode().splitlines() if x]
        status = batch["status"]
        if status == "validating":
            if self.outcome == "failed":
                batch.update(
                    status="failed",
                    failed_at=now,
                    errors={
                        "object": "list",
                        "data": [
                            {
                                "code": "invalid_request",
                                "message": "Model 'nope' is not available for batch.",
                                "param": "body.model",
                                "line": 1,
                            }
                        ],
                    },
                )
            else:
                batch.update(
                    status="in_progress",
                    in_progress_at=now,
                    request_counts={"total": len(requests), "completed": 0, "failed": 0},
                )
        elif status == "in_progress":
            if self.outcome == "expired":
                self._finish(batch, requests, "expired", limit=self.done_before_expiry)
            else:
                batch.update(status="finalizing", finalizing_at=now)
        elif status == "finalizing":
            self._finish(batch, requests, "completed")
        elif status == "cancelling":
            self._finish(batch, requests, "cancelled", limit=self.done_before_expiry)
        return batch

    def _finish(self, batch: dict, requests: list[dict], status: str, limit: int | None = None) -> None:
        out, err = [], []
        for i, req in enumerate(requests):
            rid = f"batch_req_{uuid.uuid4().hex[:24]}"
            if limit is not None and i >= limit:
                if status == "expired":
                    err.append(
                        {
                            "id": rid,
                            "custom_id": req["custom_id"],
                            "response": None,
                            "error": {
                                "code": "batch_expired",
                                "message": "This request could not be executed before the "
                                "completion window expired.",
                            },
                        }
                    )
                continue  # cancelled: no line at all for requests never run
            if req["body"]["messages"][-1]["content"] == "FAIL":
                err.append(
                    {
                        "id": rid,
                        "custom_id": req["custom_id"],
                        "response": {
                            "status_code": 400,
                            "request_id": f"req_{uuid.uuid4().hex[:12]}",
                            "body": {
                                "error": {
                                    "message": "Invalid 'messages'.",
                                    "type": "invalid_request_error",
                                    "param": "messages",
                                    "code": None,
                                }
                            },
                        },
                        "error": None,
                    }
                )
            else:
                out.append(
                    {
                        "id": rid,
                        "custom_id": req["custom_id"],
                        "response": {
                            "status_code": 200,
                            "request_id": f"req_{uuid.uuid4().hex[:12]}",
                            "body": chat_completion("ok " + req["custom_id"], req["body"]["model"], 10, 4),
                        },
                        "error": None,
                    }
                )
        out.reverse()  # the API does not keep input order
        now = int(time.time())
        if out:
            batch["output_file_id"] = self._file(_jsonl(out), "batch_output.jsonl", "batch_output")["id"]
        if err:
            batch["error_file_id"] = self._file(_jsonl(err), "batch_errors.jsonl", "batch_output")["id"]
        failed = sum(1 for e in err if e["response"] is not None)
        batch.update(
            status=status, request_counts={"total": len(requests), "completed": len(out), "failed": failed}
        )
        batch[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[status]] = (
            now
        )


def _jsonl(docs: list[dict]) -> bytes:
    return "".join(json.dumps(d) + "\n" for d in docs).encode()


# --- the Anthropic Message Batches API ---------------------------------------------------------


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000000Z"


class FakeAnthropic(FakeServer):
    """Message Batches as Anthropic's API reference shows them: in_progress -> ended (on the 2nd retrieve).

    A request whose last message says "FAIL" errors with invalid_request_error; outcome "expired" expires
    every request after the first; cancel marks unrun requests canceled.
    """

    def __init__(self, outcome: str = "ended") -> None:
        super().__init__()
        self.outcome = outcome
        self.batches: dict[str, dict] = {}
        self.requests: dict[str, list[dict]] = {}
        self.results: dict[str, list[dict]] = {}
        self.retrieves: dict[str, int] = {}

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict, Any]:
        self.seen_headers.append(dict(headers))
        # the API takes x-api-key; this SDK generation sends the same key as a Bearer token
        if ANTHROPIC_KEY not in (headers.get("x-api-key"), (headers.get("Authorization") or "")[7:]):
            return (
                401,
                {},
                {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
            )
        if not headers.get("anthropic-version"):
            return (
                400,
                {},
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "anthropic-version header is required",
                    },
                },
            )
        path = path.split("?")[0]
        with self.lock:
            if method == "POST" and path == "/v1/messages/batches":
                return self._answer("create", self._create(json.loads(body)["requests"]))
            if m := re.fullmatch(r"/v1/messages/batches/([^/]+)", path):
                return self._answer("retrieve", self._advance(m.group(1)))
            if m := re.fullmatch(r"/v1/messages/batches/([^/]+)/cancel", path):
                batch = self.batches[m.group(1)]
                batch.update(processing_status="canceling", cancel_initiated_at=iso(time.time()))
                return self._answer("cancel", batch)
            if m := re.fullmatch(r"/v1/messages/batches/([^/]+)/results", path):
                return 200, {"Content-Type": "application/binary"}, _jsonl(self.results[m.group(1)])
        return 404, {}, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}

    def _create(self, requests: list[dict]) -> dict:
        for r in requests:
            assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", r["custom_id"])
            assert "max_tokens" in r["params"] and r["params"]["messages"][0]["role"] == "user"
        bid = f"msgbatch_{uuid.uuid4().hex[:24]}"
        now = time.time()
        batch = {
            "id": bid,
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {
                "processing": len(requests),
                "succeeded": 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "ended_at": None,
            "created_at": iso(now),
            "expires_at": iso(now + 86400),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": None,
        }
        self.batches[bid], self.requests[bid], self.retrieves[bid] = batch, requests, 0
        return batch

    def _advance(self, bid: str) -> dict:
        batch = self.batches[bid]
        self.retrieves[bid] += 1
        if batch["processing_status"] == "ended" or (
            self.retrieves[bid] < 2 and batch["processing_status"] == "in_progress"
        ):
            return batch
        results, counts = [], {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for i, req in enumerate(self.requests[bid]):
            text = req["params"]["messages"][-1]["content"]
            if batch["processing_status"] == "canceling" and i >= 1:
                result: dict = {"type": "canceled"}
            elif self.outcome == "expired" and i >= 1:
                result = {"type": "expired"}
            elif text == "FAIL":
                result = {
                    "type": "errored",
                    "error": {
                        "type": "error",
                        "error": {
                            "type": "invalid_request_error",
                            "message": "messages: text content blocks must be non-empty",
                        },
                    },
                }
            else:
                result = {
                    "type": "succeeded",
                    "message": {
                        "id": f"msg_{uuid.uuid4().hex[:20]}",
                        "type": "message",
                        "role": "assistant",
                        "model": req["params"]["model"],
                        "content": [{"type": "text", "text": "ok " + req["custom_id"]}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {"input_tokens": 12, "output_tokens": 6},
                    },
                }
            counts[
                {
                    "succeeded": "succeeded",
                    "errored": "errored",
                    "canceled": "canceled",
                    "expired": "expired",
                }[result["type"]]
            ] += 1
            results.append({"custom_id": req["custom_id"], "result": result})
        results.reverse()
        self.results[bid] = results
        batch.update(
            processing_status="ended",
            ended_at=iso(time.time()),
            request_counts=counts,
            results_url=f"{self.url}/v1/messages/batches/{bid}/results",
        )
        return batch


@pytest.fixture
def fake_openai() -> Iterator[Callable[..., FakeOpenAI]]:
    servers: list[FakeServer] = []

    def make(**kwargs: Any) -> FakeOpenAI:
        server = FakeOpenAI(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def fake_anthropic() -> Iterator[Callable[..., FakeAnthropic]]:
    servers: list[FakeServer] = []

    def make(**kwargs: Any) -> FakeAnthropic:
        server = FakeAnthropic(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


# --- helpers -----------------------------------------------------------------------------------


def write_lines(path: Path, docs: list[Any]) -> Path:
    path.write_text("".join((d if isinstance(d, str) else json.dumps(d)) + "\n" for d in docs))
    return path


def chat_line(custom_id: str, text: str, model: str = "gpt-4o-mini", **body: Any) -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": text}], **body},
    }


def prompt_file(tmp_path: Path, n: int, name: str = "in.jsonl") -> Path:
    """n plain lines, custom_id r<i>, prompt p<i> (the chat server echoes the marker p<i>)."""
    return write_lines(tmp_path / name, [{"custom_id": f"r{i}", "prompt": f"p{i}"} for i in range(n)])


def read_results(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def journal_rows(ok: bool | None = None) -> set[str]:
    """custom_ids in the job store's journal (all jobs), read as another process would."""
    import sqlite3

    db = Path(os.environ["LLMOPS_DATA_DIR"]) / "batch" / "jobs.sqlite"
    where = "" if ok is None else f" WHERE ok = {int(ok)}"
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("SELECT custom_id FROM results" + where)}


def popen_cli(*args: str, stderr: Any = subprocess.PIPE) -> subprocess.Popen[str]:
    """The CLI as a background subprocess (this checkout first on the path)."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.Popen(llmops_cmd(*args), stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)


def llmops_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmops", *args]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The CLI as a real subprocess, with this checkout first on the path."""
    repo = Path(__file__).resolve().parents[2]
    full = {**os.environ, "PYTHONPATH": str(repo), **(env or {})}
    return subprocess.run(llmops_cmd(*args), capture_output=True, text=True, env=full, timeout=timeout)


def seeded(seed: int) -> random.Random:
    return random.Random(seed)


@pytest.fixture
def bt() -> Any:
    """The helpers above for test modules (importlib mode lets tests import no sibling module)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        write_lines=write_lines,
        chat_line=chat_line,
        prompt_file=prompt_file,
        read_results=read_results,
        journal_rows=journal_rows,
        run_cli=run_cli,
        popen_cli=popen_cli,
        llmops_cmd=llmops_cmd,
        seeded=seeded,
        OPENAI_KEY=OPENAI_KEY,
        ANTHROPIC_KEY=ANTHROPIC_KEY,
    )
