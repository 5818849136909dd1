"""The job store: SQLite in the user data dir. Jobs, and the local runner's journal of finished requests.

The journal is a table keyed by (job, custom_id): a request written twice (sent again after a crash
before its result was committed) still has one line. `llmops.batch.journal` writes it in group commits.
Only the process that owns a job (`llmops.batch.lock`) saves its record; others read it, and ask for a
cancel through `request_cancel`, which no owner's save can undo.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
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
INSERT_RESULT = "INSERT OR REPLACE INTO results (job_id, custom_id, seq, ok, line) VALUES (?, ?, ?, ?, ?)"


def batch_dir() -> Path:
    from llmops.paths import user_data_dir

    return user_data_dir() / "batch"


def new_job_id() -> str:
    return "batch_" + uuid.uuid4().hex[:16]


def connect(path: Path, schema: str | None = None) -> sqlite3.Connection:
    """A connection in WAL mode with synchronous=FULL: a commit is on disk when it returns."""
    db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    _when_unlocked(lambda: db.execute("PRAGMA journal_mode=WAL"))
    db.execute("PRAGMA synchronous=FULL")
    if schema:
        _when_unlocked(lambda: db.executescript(schema))
    return db


def _when_unlocked(step: Callable[[], object], patience_s: float = 30.0) -> None:
    """Switching a new database to WAL (or creating its tables) fails at once, without the busy timeout,
    when another process does the same at that moment (two submits at once): try again for a while."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def result_rows(job_id: str, lines: list[tuple[int, OutputLine]]) -> list[tuple[str, str, int, int, str]]:
    return [(job_id, ln.custom_id, seq, int(ln.ok), ln.model_dump_json()) for seq, ln in lines]


class JobStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or batch_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "jobs.sqlite"
        self._db = connect(self.path, SCHEMA)

    def close(self) -> None:
        self._db.close()

    def job_dir(self, job_id: str) -> Path:
        path = self.root / job_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- jobs --------------------------------------------------------------------------------
    def save(self, job: Job) -> Job:
        """Write the record (its owner does this); a cancel asked for meanwhile is kept, and seen by `job`."""
        job.updated_at = time.time()
        with transaction(self._db) as db:
            row = db.execute("SELECT doc FROM jobs WHERE id = ?", (job.id,)).fetchone()
            if row is not None and json.loads(row[0]).get("cancel_requested"):
                job.cancel_requested = True
            db.execute(
                "INSERT OR REPLACE INTO jobs (id, created_at, input_hash, state, doc) VALUES (?, ?, ?, ?, ?)",
                (job.id, job.created_at, job.input_hash, job.state, job.model_dump_json()),
            )
        return job

    def request_cancel(self, job_id: str) -> None:
        """Mark a job for cancelling without rewriting the rest of its record (its owner may be running)."""
        with transaction(self._db) as db:
            row = db.execute("SELECT doc FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return
            doc = json.loads(row[0])
            doc["cancel_requested"] = True
            db.execute("UPDATE jobs SET doc = ? WHERE id = ?", (json.dumps(doc), job_id))

    def cancel_requested(self, job_id: str) -> bool:
        row = self._db.execute("SELECT doc FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and json.loads(row[0]).get("cancel_requested"))

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
    def record_many(self, job_id: str, lines: list[tuple[int, OutputLine]]) -> None:
        """Results committed in one transaction (remote results, cancelled lines)."""
        with transaction(self._db) as db:
            db.executemany(INSERT_RESULT, result_rows(job_id, lines))

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
    """Write a file of the job's own folder atomically: a half-written file never replaces a whole one."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
        fh.flush()
    tmp.replace(path)
