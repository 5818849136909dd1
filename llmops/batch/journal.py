"""The local runner's journal, written in group commits by one thread.

Each finished request is queued; the thread takes whatever has queued up and commits it in one
transaction (one fsync for the group), so the runner never waits on the disk and the fsync cost is shared
by every request that finished during the last commit. A request that finished but was not committed
when the process died is sent again on resume; the journal keeps one line per custom_id, so results stay
exactly-once.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from llmops.batch.models import OutputLine
from llmops.batch.store import INSERT_RESULT, connect, result_rows, transaction
from llmops.errors import OperationFailed

MAX_GROUP = 1024
_STOP = None


class Journal:
    def __init__(self, db_path: Path, job_id: str) -> None:
        self.db_path = db_path
        self.job_id = job_id
        self.commits = 0
        self.committed = 0
        self._queue: queue.SimpleQueue[tuple[int, OutputLine] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="llmops-journal", daemon=True)
        self._thread.start()

    def add(self, seq: int, line: OutputLine) -> None:
        """Queue a finished request for the next group commit."""
        if self._error is not None:
            raise OperationFailed(
                f"the batch journal could not be written ({self.db_path}): {self._error}",
                hint="free disk space or fix the data folder's permissions, then resume the job",
            )
        self._queue.put((seq, line))

    def close(self) -> None:
        """Commit everything queued, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None:
            raise OperationFailed(f"the batch journal could not be written ({self.db_path}): {self._error}")

    def _loop(self) -> None:
        db = connect(self.db_path)
        try:
            stopping = False
            while not stopping:
                group: list[tuple[int, OutputLine]] = []
                item = self._queue.get()
                while True:
                    if item is _STOP:
                        stopping = True
                        break
                    group.append(item)
                    if len(group) >= MAX_GROUP:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if group and self._error is None:
                    self._commit(db, group)
        finally:
            db.close()

    def _commit(self, db, group: list[tuple[int, OutputLine]]) -> None:
        try:
            with transaction(db):
                db.executemany(INSERT_RESULT, result_rows(self.job_id, group))
        except Exception as exc:  # reported to the runner on its next add(), and by close()
            self._error = exc
            return
        self.commits += 1
        self.committed += len(group)
