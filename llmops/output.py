"""The one staged output writer: write beside the target, swap only when the work succeeded.

Rules every command that writes at a user's request follows (`-o`, `--k8s -o`, `--html`, `init`):
- checked before any work starts: a missing parent folder, `.`, `$HOME`, `/` (or any folder holding the
  current directory or the home folder) are refused with exit 2;
- an existing file or non-empty folder is never replaced without `--force`;
- with `--force` a folder is replaced only when llmops wrote it (it carries `.llmops-output`, listing what
  llmops put there, and nothing else was added) or it is empty; a file is replaced as asked;
- the new result is written to a temporary sibling and swapped in only once complete, so a failure or
  Ctrl-C leaves an earlier output untouched; the folder keeps ordinary permissions (not mkdtemp's 0700).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmops.errors import UsageError

MARKER = ".llmops-output"


def _umask_mode(kind_bits: int) -> int:
    mask = os.umask(0)
    os.umask(mask)
    return kind_bits & ~mask


def _refuse_special(path: Path) -> None:
    """`.`, `/`, $HOME and anything that holds them are never an output: --force would empty them."""
    target = path.expanduser().absolute().resolve()
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    what = None
    if target == Path(target.anchor):
        what = "the root folder"
    elif target == home or home.is_relative_to(target):
        what = "your home folder" if target == home else "a folder that holds your home folder"
    elif target == cwd or cwd.is_relative_to(target):
        what = "the current folder" if target == cwd else "a folder that holds the current folder"
    if what:
        raise UsageError(
            f"refusing to write output into {path} ({what})",
            hint="give -o a new folder, e.g. -o out/result",
        )


def _foreign_entries(path: Path) -> list[str]:
    """What a folder holds that llmops did not write there (all of it when there is no marker)."""
    entries = sorted(p.name for p in path.iterdir())
    marker = path / MARKER
    if not marker.is_file():
        return entries
    try:
        written = set(json.loads(marker.read_text(encoding="utf-8")).get("entries", []))
    except (OSError, ValueError, AttributeError):
        return entries
    return [e for e in entries if e != MARKER and e not in written]


def check_output_dir(path: Path, *, force: bool) -> None:
    """Refuse, before any work, an output folder that cannot or must not be (re)written."""
    _refuse_special(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"output {path} is a file, not a folder", hint="give -o a folder path")
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not force:
        raise UsageError(
            f"output folder {path} already exists and is not empty",
            hint="choose another -o DIR, or pass --force to replace an earlier llmops output",
        )
    foreign = _foreign_entries(path)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UsageError(
            f"output folder {path} holds files llmops did not write ({shown}); --force replaces only "
            "a folder llmops wrote",
            hint="choose another -o DIR, or move those files away yourself",
        )


def check_output_file(path: Path, *, force: bool) -> None:
    """Refuse, before any work, an output file that cannot or must not be (re)written."""
    if path.is_dir():
        raise UsageError(f"output {path} is a folder, not a file", hint="give a file path")
    parent = path.expanduser().absolute().parent
    if not parent.is_dir():
        raise UsageError(
            f"the folder {parent} (for {path}) does not exist",
            hint=f"create it first (mkdir -p {parent}) or choose another path",
        )
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="choose another path, or pass --force to replace it")


def _write_marker(folder: Path, command: str) -> None:
    from llmops import __version__

    entries = sorted(p.name for p in folder.iterdir() if p.name != MARKER)
    doc = {"written_by": f"llmops {__version__}", "command": command, "time": time.time(), "entries": entries}
    (folder / MARKER).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


@contextmanager
def staged_dir(path: Path, *, force: bool, command: str) -> Iterator[Path]:
    """A temporary sibling folder that becomes `path` only when the block succeeds.

    An earlier output at `path` is kept until the new one is complete, then removed (it was checked to be
    llmops's own, or empty). On an exception or Ctrl-C the temporary folder goes and `path` is untouched.
    """
    path = path.expanduser()
    check_output_dir(path, force=force)
    parent = path.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=parent))
    try:
        mode = path.stat().st_mode & 0o7777 if path.is_dir() else _umask_mode(0o777)
        tmp.chmod(mode)
        yield tmp
        _write_marker(tmp, command)
        check_output_dir(path, force=force)  # someone may have written there meanwhile
        if path.exists():
            old = parent / f".{path.name}.old-{os.getpid()}"
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def staged_file(path: Path, *, force: bool) -> Iterator[Path]:
    """A temporary sibling file that replaces `path` only when the block succeeds."""
    path = path.expanduser()
    check_output_file(path, force=force)
    parent = path.absolute().parent
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.partial-", dir=parent)
    os.close(fd)
    tmp = Path(name)
    try:
        mode = path.stat().st_mode & 0o7777 if path.is_file() else _umask_mode(0o666)
        tmp.chmod(mode)
        yield tmp
        check_output_file(path, force=force)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_output_file(path: Path, data: str | bytes, *, force: bool) -> Path:
    """Write a whole file atomically (beside, then swap), never over an existing one without --force."""
    with staged_file(path, force=force) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return path
