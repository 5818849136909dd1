"""The one error path: bad input never reaches the user as an internal error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from llmops.errormap import map_exception
from llmops.errors import EXIT_FAILED, EXIT_USAGE, OperationFailed


class _Section(BaseModel):
    mode: Literal["off", "log", "block"]


def test_pydantic_error_has_path_and_allowed_values() -> None:
    with pytest.raises(ValidationError) as info:
        _Section.model_validate({"mode": "loud"})
    err = map_exception(info.value)
    assert err is not None and err.exit_code == EXIT_USAGE
    assert "mode:" in err.render() and "'off', 'log' or 'block'" in err.render() and "'loud'" in err.render()


def test_os_errors_name_the_path(tmp_path: Path) -> None:
    try:
        (tmp_path / "nope" / "x").read_text()
    except OSError as exc:
        err = map_exception(exc)
    assert err is not None and err.exit_code == EXIT_USAGE and str(tmp_path / "nope" / "x") in err.render()


def test_decode_and_json_errors_are_usage_errors() -> None:
    try:
        b"\xff\xfe".decode("utf-8")
    except UnicodeDecodeError as exc:
        assert map_exception(exc).exit_code == EXIT_USAGE  # type: ignore[union-attr]
    try:
        json.loads("{nope")
    except json.JSONDecodeError as exc:
        assert map_exception(exc).exit_code == EXIT_USAGE  # type: ignore[union-attr]


def test_llmops_errors_pass_through_and_bugs_stay_bugs() -> None:
    failed = OperationFailed("engine died")
    assert map_exception(failed) is failed and failed.exit_code == EXIT_FAILED
    assert map_exception(ZeroDivisionError("x")) is None
