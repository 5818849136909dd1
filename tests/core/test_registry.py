"""The registry helper: lazy import, close-match errors."""

from __future__ import annotations

import pytest

from llmops.errors import UsageError
from llmops.registry import Registry


def test_lazy_lookup_and_errors() -> None:
    reg: Registry[object] = Registry("thing", {"path": "pathlib:Path"}, flag="--thing")
    assert reg.names() == ["path"] and "path" in reg
    from pathlib import Path

    assert reg.get("path") is Path
    with pytest.raises(UsageError, match=r"unknown thing 'pth' \(--thing\); did you mean 'path'\?"):
        reg.get("pth")
    reg.register("purepath", "pathlib:PurePath")
    assert dict(reg.items())["purepath"].__name__ == "PurePath"
