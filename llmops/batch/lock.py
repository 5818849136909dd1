"""One owner per job at a time: an flock on the job folder's `lock` file, which also holds the owner's pid.

The kernel drops an flock when its process dies, even on SIGKILL, so a job is never locked by the dead.
The owner alone runs the job, polls its provider and saves its record; another command that finds the job
owned waits for it (attaches), or reads the record and says who owns it. A detached worker inherits its
parent's lock (the file descriptor is passed, `OWNER_FD_ENV` names it), so the job is never unowned
between the two.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

OWNER_FD_ENV = "LLMOPS_BATCH_OWNER_FD"  # "JOB_ID:FD", set for a detached worker only


class JobLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: int | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    @property
    def fd(self) -> int | None:
        return self._fh

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process now owns the job."""
        if self._fh is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fh = fd
        self._write_pid()
        return True

    def adopt(self, job_id: str) -> bool:
        """Take over the lock a parent passed down (a detached worker); False when none was passed."""
        spec = os.environ.get(OWNER_FD_ENV, "")
        owner_job, _, fd_text = spec.partition(":")
        if owner_job != job_id or not fd_text.isdigit():
            return False
        fd = int(fd_text)
        try:
            mine, ours = os.fstat(fd), os.stat(self.path)
        except OSError:
            return False
        if (mine.st_dev, mine.st_ino) != (ours.st_dev, ours.st_ino):
            return False
        os.environ.pop(OWNER_FD_ENV, None)
        self._fh = fd
        self._write_pid()
        return True

    def _write_pid(self) -> None:
        assert self._fh is not None
        os.ftruncate(self._fh, 0)
        os.pwrite(self._fh, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        """Let go. Closing is enough: a worker that inherited the descriptor keeps the lock."""
        if self._fh is not None:
            os.close(self._fh)
            self._fh = None

    def holder(self) -> int | None:
        """The pid owning the job, or None when nobody does (this process included, if it holds it)."""
        if self._fh is not None:
            return os.getpid()
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 32, 0).decode(errors="replace").strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """A short critical section across processes (finding or creating the job for a file)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
