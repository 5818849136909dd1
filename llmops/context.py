"""Global CLI state (from the root options) and the lazily loaded catalog and workspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from llmops.profiles.loader import Catalog
    from llmops.workspace import Workspace


@dataclass
class AppState:
    profiles_dir: Path | None = None
    config: Path | None = None
    json: bool = False
    verbose: bool = False
    _catalog: Catalog | None = field(default=None, repr=False)
    _workspace: Workspace | None = field(default=None, repr=False)

    def catalog(self) -> Catalog:
        if self._catalog is None:
            from llmops.profiles.loader import Catalog

            self._catalog = Catalog.discover(self.profiles_dir)
        return self._catalog

    def workspace(self) -> Workspace:
        if self._workspace is None:
            from llmops.workspace import load_workspace

            self._workspace = load_workspace(self.config)
        return self._workspace


def state(ctx: typer.Context, *, json: bool = False, verbose: bool = False) -> AppState:
    """The root's state, with a command's own --json/-v folded in."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    st: AppState = root.obj
    st.json = st.json or json
    st.verbose = st.verbose or verbose
    return st
