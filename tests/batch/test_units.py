"""Pure pieces: conversions, splitting, cost, retry timing, the job store."""

from __future__ import annotations

import random

import pytest

from llmops.batch.convert import anthropic_result_to_output, chat_to_anthropic, usage_of
from llmops.batch.cost import estimate_tokens, price
from llmops.batch.endpoint import endpoint_url
from llmops.batch.journal import Journal
from llmops.batch.models import OutputLine, ResponsePart
from llmops.batch.retry import backoff_delay, parse_retry_after, retry_delay
from llmops.batch.split import split_ranges
from llmops.batch.store import JobStore


def test_chat_body_to_anthropic_params() -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "temperature": 0.3,
        "stop": "END",
        "seed": 1,
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
    }
    assert chat_to_anthropic(body) == {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "system": "Be terse.",
        "temperature": 0.3,
        "stop_sequences": ["END"],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
    }
    with pytest.raises(ValueError, match="max_tokens is required"):
        chat_to_anthropic({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    with pytest.raises(ValueError, match="response_format has no Anthropic"):
        chat_to_anthropic(
            {
                "model": "m",
                "max_tokens": 1,
                "response_format": {},
                "messages": [{"role": "user", "content": "x"}],
            }
        )
    with pytest.raises(ValueError, match="only text content parts"):
        chat_to_anthropic(
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            }
        )


def test_anthropic_results_become_openai_output_lines() -> None:
    ok = anthropic_result_to_output(
        {
            "custom_id": "a",
            "result": {
                "type": "succeeded",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-haiku-4-5",
                    "content": [{"type": "text", "text": "Hi"}],
                    "stop_reason": "max_tokens",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 7, "output_tokens": 2},
                },
            },
        },
        "msgbatch_1",
    )
    assert ok.ok and ok.response is not None and ok.response.body is not None
    assert ok.response.body["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Hi"},
        "finish_reason": "length",
    }
    assert usage_of(ok) == (7, 2)
    bad = anthropic_result_to_output(
        {
            "custom_id": "b",
            "result": {
                "type": "errored",
                "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "nope"}},
            },
        },
        "msgbatch_1",
    )
    assert not bad.ok and bad.response is not None and bad.response.status_code == 400
    assert bad.response.body == {"error": {"type": "invalid_request_error", "message": "nope"}}
    for kind, code in (("canceled", "batch_cancelled"), ("expired", "batch_expired")):
        line = anthropic_result_to_output({"custom_id": "c", "result": {"type": kind}}, "msgbatch_1")
        assert line.response is None and line.error is not None and line.error.code == code


def test_split_ranges_keeps_order_and_limits() -> None:
    assert split_ranges([10] * 7, max_requests=3, max_bytes=10_000) == [(0, 3), (3, 3), (6, 1)]
    assert split_ranges([40, 40, 40, 10], max_requests=100, max_bytes=85) == [(0, 2), (2, 2)]
    assert split_ranges([], max_requests=3, max_bytes=10) == []


def test_cost() -> None:
    assert estimate_tokens({"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 10}) == (
        100,
        10,
    )
    assert price(1_000_000, 1_000_000, input_per_1m=0.15, output_per_1m=0.60, discount=0.5) == pytest.approx(
        0.375
    )


def test_retry_after_and_backoff() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after(
        {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0
    ) == pytest.approx(10)
    assert parse_retry_after({}) is None
    rng = random.Random(0)
    delays = [backoff_delay(a, base=1.0, cap=8.0, rng=rng) for a in range(6)]
    for attempt, d in enumerate(delays):
        ceiling = min(8.0, 2**attempt)
        assert ceiling / 2 <= d <= ceiling
    assert 3.0 <= retry_delay(0, 3.0, base=1.0, cap=8.0, rng=rng) <= 3.25


def test_endpoint_url() -> None:
    assert endpoint_url("http://h:1/v1", "/v1/chat/completions") == "http://h:1/v1/chat/completions"
    assert endpoint_url("http://h:1/v1/", "/v1/embeddings") == "http://h:1/v1/embeddings"
    assert endpoint_url("http://h:1/api", "/v1/chat/completions") == "http://h:1/api/v1/chat/completions"


def test_journal_keeps_one_line_per_custom_id(tmp_path) -> None:
    store = JobStore(tmp_path)
    fail = OutputLine(id="1", custom_id="a", response=ResponsePart(status_code=500, body={}))
    ok = OutputLine(id="2", custom_id="a", response=ResponsePart(status_code=200, body={}))
    journal = Journal(store.path, "job")  # group commits: a request sent twice still has one line
    journal.add(0, fail)
    journal.add(0, ok)
    journal.add(1, OutputLine(id="3", custom_id="b", response=ResponsePart(status_code=200, body={})))
    journal.close()
    assert journal.committed == 3 and 1 <= journal.commits <= 3
    assert [ln.id for ln in store.result_lines("job")] == ["2", "3"]
    assert store.succeeded_ids("job") == {"a", "b"}
    assert store.journal_counts("job", 3).model_dump() == {"total": 3, "succeeded": 2, "failed": 0}
