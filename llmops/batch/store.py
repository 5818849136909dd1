"""The job store: SQLite in the user data dir. Jobs, and the local runner's journal of finished requests.

The journal is a table keyed by (job, custom_id), written with one fsync'd commit per finished request
(WAL, synchronous=FULL), so a run killed at any moment resumes without losing or repeating a result.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmops.batch.models import Counts, Job, OutputLine
from llmops.errors import NotFoundError

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, created_at REAL NOT NULL, input_hash TEXT NOT NULL, state TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT NOT NULL, custom_id TEXT NOT NULL, seq INTEGER NOT NULL, ok INTEGER NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (job_id, custom_id)
);
"""


def batch_dir() -> Path:
    from llmops.paths import user_data_dir

    return user_data_dir() / "batch"


def new_job_id() -> str:
    return "batch_" + uuid.uuid4().hex[:16]


class JobStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or batch_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "jobs.sqlite"
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def job_dir(self, job_id: str) -> Path:
        path = self.root / job_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- jobs --------------------------------------------------------------------------------
    def save(self, job: Job) -> Job:
        job.updated_at = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO jobs (id, created_at, input_hash, state, doc) VALUES (?, ?, ?, ?, ?)",
                (job.id, job.created_at, job.input_hash, job.state, job.model_dump_json()),
            )
        return job

    def get(self, job_id: str) -> Job:
        """A job by its ID or a unique prefix of it."""
        rows = self._db.execute("SELECT doc FROM jobs WHERE id = ?", (job_id,)).fetchall()
        if not rows:
            rows = self._db.execute(
                "SELECT doc FROM jobs WHERE id LIKE ? ESCAPE '\\'", (job_id.replace("_", "\\_") + "%",)
            ).fetchall()
        if len(rows) != 1:
            what = "matches several jobs" if rows else "not found"
            raise NotFoundError(f"batch job '{job_id}' {what}", hint="`llmops batch list` shows every job")
        return Job.model_validate_json(rows[0][0])

    def all(self) -> list[Job]:
        rows = self._db.execute("SELECT doc FROM jobs ORDER BY created_at").fetchall()
        return [Job.model_validate_json(r[0]) for r in rows]

    def unfinished_for(self, input_hash: str) -> list[Job]:
        rows = self._db.execute(
            "SELECT doc FROM jobs WHERE input_hash = ? AND state NOT IN "
            "('completed', 'failed', 'cancelled', 'expired') ORDER BY created_at DESC",
            (input_hash,),
        ).fetchall()
        return [Job.model_validate_json(r[0]) for r in rows]

    # --- the journal ---------------------------------------------------------------------------
    def record(self, job_id: str, seq: int, line: OutputLine) -> None:
        """One finished request, committed (and fsync'd) before the call returns."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO results (job_id, custom_id, seq, ok, line) VALUES (?, ?, ?, ?, ?)",
                (job_id, line.custom_id, seq, int(line.ok), line.model_dump_json()),
            )

    def record_many(self, job_id: str, lines: list[tuple[int, OutputLine]]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO results (job_id, custom_id, seq, ok, line) VALUES (?, ?, ?, ?, ?)",
                [(job_id, ln.custom_id, seq, int(ln.ok), ln.model_dump_json()) for seq, ln in lines],
            )

    def succeeded_ids(self, job_id: str) -> set[str]:
        rows = self._db.execute("SELECT custom_id FROM results WHERE job_id = ? AND ok = 1", (job_id,))
        return {r[0] for r in rows}

    def journal_counts(self, job_id: str, total: int) -> Counts:
        ok, failed = self._db.execute(
            "SELECT COALESCE(SUM(ok), 0), COALESCE(SUM(1 - ok), 0) FROM results WHERE job_id = ?", (job_id,)
        ).fetchone()
        return Counts(total=total, succeeded=ok, failed=failed)

    def result_lines(self, job_id: str) -> Iterator[OutputLine]:
        """The journal in input order."""
        for (line,) in self._db.execute("SELECT line FROM results WHERE job_id = ? ORDER BY seq", (job_id,)):
            yield OutputLine.model_validate_json(line)


def write_jsonl(path: Path, docs: Iterator[dict] | list[dict]) -> None:
    """Write atomically: a half-written results file never replaces a whole one."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
        fh.flush()
    tmp.replace(path)
