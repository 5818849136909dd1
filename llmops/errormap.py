"""The one error path: every exception a command can meet becomes an LlmopsError with one line and a fix.

Capability code raises `llmops.errors` classes where it knows the context. Whatever else escapes (a
pydantic error, an OS error on a path, undecodable bytes) is translated here, so a user never sees
"internal error" for bad input. Pydantic errors keep the full field path and the allowed values.
"""

from __future__ import annotations

import difflib
import errno
import json
import re
import typing
from typing import Any

from llmops.errors import LlmopsError, OperationFailed, UsageError

Loc = tuple[str | int, ...]
_USAGE_ERRNOS = {
    errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.ELOOP
}  # fmt: skip
_SYMLINK_LOOP = re.compile(r"^Symlink loop from '(.*)'$")


def _model_at(model: Any, loc: Loc) -> Any:
    """The pydantic model class that validates the mapping at `loc`, if one does."""
    from pydantic import BaseModel

    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Find the BaseModel inside Optional[...] / list[...] / Annotated[...]."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap(arg)
        if found is not None:
            return found
    return None


def field_message(err: dict[str, Any], model: Any = None) -> str:
    """One pydantic error as a message: unknown keys with 'did you mean', allowed values, what was given."""
    kind = err["type"]
    loc: Loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1]) if model is not None else None
        known = sorted(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        allowed = f" (allowed: {', '.join(known)})" if known and not close else ""
        return f"unknown key{hint}{allowed}"
    if kind == "missing":
        return "required field is missing"
    msg = err["msg"]
    if (
        "input" in err
        and kind not in ("model_type", "dict_type")
        and not isinstance(err["input"], dict | list)
    ):
        msg = f"{msg} (got {err['input']!r})"
    return msg


def field_path(loc: Loc) -> str:
    """pydantic's loc as a dotted path, without its internal validator names."""
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def validation_error(exc: Any, model: Any = None, *, what: str = "value") -> UsageError:
    """A pydantic ValidationError as one UsageError: every problem as `field: message`."""
    parts = [
        f"{field_path(tuple(e['loc'])) or what}: {field_message(e, model)}"
        for e in exc.errors(include_url=False)
    ]
    return UsageError(f"invalid {what}: " + "; ".join(parts))


def os_error(exc: OSError) -> LlmopsError:
    """An OS error on a path: the path, the reason, and whether it is the user's input (exit 2) or not."""
    where = exc.filename if exc.filename is not None else None
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP:
        return UsageError(
            f"{where}: a symbolic link loop" if where else str(exc), hint="fix or remove the link"
        )
    message = f"{where}: {reason}" if where else reason
    if exc.errno in _USAGE_ERRNOS or isinstance(
        exc, FileNotFoundError | IsADirectoryError | NotADirectoryError
    ):
        return UsageError(message, hint="check the path and its permissions")
    if exc.errno == errno.ENOSPC:
        return OperationFailed(message, hint="free some disk space and run it again")
    return OperationFailed(message)


def map_exception(exc: BaseException) -> LlmopsError | None:
    """The LlmopsError for an exception, or None when it is a bug (reported as an internal error)."""
    if isinstance(exc, LlmopsError):
        return exc
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return validation_error(exc, what=exc.title or "value")
    if isinstance(exc, UnicodeDecodeError):
        return UsageError(
            f"a file is not UTF-8 text ({exc.reason} at byte {exc.start})",
            hint="give a text file (YAML, JSON or JSONL)",
        )
    if isinstance(exc, json.JSONDecodeError):
        return UsageError(f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    if isinstance(exc, OSError) and exc.filename is not None:
        return os_error(exc)
    if isinstance(exc, RuntimeError) and (loop := _SYMLINK_LOOP.match(str(exc))):
        # Path.resolve() before Python 3.13 (3.13 raises OSError ELOOP, mapped above)
        return UsageError(f"{loop.group(1)}: a symbolic link loop", hint="fix or remove the link")
    import yaml

    if isinstance(exc, yaml.YAMLError):
        return UsageError(f"invalid YAML: {exc}")
    return None
