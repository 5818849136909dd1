"""Where llmops keeps user configuration and data; both overridable by environment."""

from __future__ import annotations

import errno
import os
from pathlib import Path

APP_NAME = "llmops"


def user_config_dir() -> Path:
    """$LLMOPS_CONFIG_DIR, else the platform's user config dir."""
    if env := os.environ.get("LLMOPS_CONFIG_DIR"):
        return Path(env)
    from platformdirs import user_config_path

    return user_config_path(APP_NAME)


def user_data_dir() -> Path:
    """$LLMOPS_DATA_DIR, else the platform's user data dir (job store, caches)."""
    if env := os.environ.get("LLMOPS_DATA_DIR"):
        return Path(env)
    from platformdirs import user_data_path

    return user_data_path(APP_NAME)


def user_cache_dir() -> Path:
    """$LLMOPS_CACHE_DIR, else the platform's user cache dir: facts about this machine that llmops can
    always find out again (the CPU self-check's verdict)."""
    if env := os.environ.get("LLMOPS_CACHE_DIR"):
        return Path(env)
    from platformdirs import user_cache_path

    return user_cache_path(APP_NAME)


def shipped_configs_dir() -> Path:
    """Profiles shipped with the package (a wheel) or the repository's configs/ (a checkout)."""
    packaged = Path(__file__).parent / "_configs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "configs"


def real_path(path: Path) -> Path:
    """`path` with its symbolic links resolved, to compare or show it. A symbolic link loop (`a.yaml ->
    b.yaml -> a.yaml`: `Path.resolve` raises RuntimeError before Python 3.13, OSError after) gives the
    absolute path as written: reading the file is where the loop is reported, as a problem naming it."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return path.absolute()


def broken_link(path: Path) -> str | None:
    """Why `path` is a symbolic link that leads to no file ('a symbolic link loop', 'a symbolic link to a
    missing file'), or None when it is not one."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as exc:
        return "a symbolic link loop" if exc.errno == errno.ELOOP else "a symbolic link to a missing file"
    return None
