"""The package layers, read from the source (every import statement, also those inside functions and
under TYPE_CHECKING): base modules never import a capability package or the CLI; capability packages
never import the CLI. An import cycle through the base layer (issue 19: workspace -> gateway.config ->
profiles -> settings -> workspace) cannot come back while this holds."""

from __future__ import annotations

import ast
from pathlib import Path

import llmops

ROOT = Path(llmops.__file__).parent

# The CLI: parses flags and renders (Typer, Rich); imports anything.
CLI = {"cli", "__main__", "commands", "context", "options", "ui"}
# The capability packages: each does one job for a command; may use each other and the base.
CAPABILITIES = {
    "batch",
    "bench",
    "gateway",
    "monitor",
    "plan",
    "playground",
    "quantize",
    "serve",
    "trt",
    "tryout",
}
# Everything the capabilities build on.
BASE = {
    "__init__",
    "doctor",
    "errormap",
    "errors",
    "hf",
    "humanize",
    "k8s",
    "output",
    "paths",
    "profiles",
    "progress",
    "prompts",
    "registry",
    "sampling",
    "settings",
    "steal",
    "workspace",
}


def _top(path: Path) -> str:
    """The top-level module or package under llmops/ a file belongs to."""
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _llmops_imports(path: Path) -> list[tuple[str, int]]:
    """(top-level llmops module imported, line) for every import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: llmops uses absolute imports only"
            module = node.module or ""
            names = [f"llmops.{a.name}" for a in node.names] if module == "llmops" else [module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "llmops" and len(parts) > 1:
                found.append((parts[1], node.lineno))
    return sorted(found, key=lambda f: f[1])


def _violations(allowed_for: dict[str, set[str]]) -> list[str]:
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        src = _top(path)
        if src not in allowed_for:
            continue
        for dst, line in _llmops_imports(path):
            if dst != src and dst not in allowed_for[src] and dst != "__version__":
                problems.append(f"{path.relative_to(ROOT.parent)}:{line}: {src} imports llmops.{dst}")
    return problems


def test_every_module_has_a_layer() -> None:
    unplaced = {_top(p) for p in ROOT.rglob("*.py")} - CLI - CAPABILITIES - BASE
    assert not unplaced, f"add these to a layer in {__file__}: {sorted(unplaced)}"
    assert not (CLI & CAPABILITIES or CLI & BASE or CAPABILITIES & BASE)


def test_base_never_imports_a_capability_or_the_cli() -> None:
    assert _violations({b: BASE for b in BASE}) == []


def test_capabilities_never_import_the_cli() -> None:
    assert _violations({c: BASE | CAPABILITIES for c in CAPABILITIES}) == []


def test_the_walker_sees_every_import(tmp_path: Path) -> None:
    """Imports inside functions and under TYPE_CHECKING count too (a lazy import still ties the layers)."""
    fake = tmp_path / "m.py"
    fake.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from llmops.bench import run\n"
        "def f():\n    from llmops.gateway.config import GatewaySection\n    import llmops.serve.engines\n"
    )
    assert _llmops_imports(fake) == [("bench", 3), ("gateway", 5), ("serve", 6)]


def test_the_gateway_section_still_reports_file_line_and_field(tmp_path: Path) -> None:
    """The workspace keeps `gateway:` as written; its owner validates it with the same file:line problems."""
    from typer.testing import CliRunner

    from llmops.cli import app

    Path("llmops.yaml").write_text("model: smollm2\ngateway:\n  port: 4001\n  retries: {atempts: 3}\n")
    result = CliRunner().invoke(app, ["gateway", "--no-probe", "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "llmops.yaml:4: gateway.retries.atempts: unknown key; did you mean 'attempts'?" in result.stderr
    assert "Traceback" not in result.output
    # a section that is not a mapping is refused when the file is read, for every command
    Path("llmops.yaml").write_text("model: smollm2\ngateway: 5\n")
    result = CliRunner().invoke(app, ["gateway", "--no-probe", "--dry-run"])
    assert result.exit_code == 2 and "llmops.yaml:2: gateway:" in result.stderr, result.output
