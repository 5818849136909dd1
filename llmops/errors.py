"""One error hierarchy, each class carrying its exit code and a hint that names the fix.

Capability packages raise these; the CLI turns them into a single line on stderr
(no traceback unless -v) and the matching exit code.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


class LlmopsError(Exception):
    """Base of every error llmops reports to a user."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """One line: what went wrong, and how to fix it."""
        return f"{self.message}; {self.hint}" if self.hint else self.message


class OperationFailed(LlmopsError):
    """The operation ran and failed: engine died, batch failed, SLO breached."""

    exit_code = EXIT_FAILED


class UsageError(LlmopsError):
    """Bad input or usage: a flag, a file, a name."""

    exit_code = EXIT_USAGE


class NotFoundError(UsageError):
    """A name (model, node, provider, job) that resolves to nothing."""


class EnvironmentMissing(LlmopsError):
    """The machine lacks a requirement: an extra, an engine, a GPU, an API key."""

    exit_code = EXIT_ENVIRONMENT


class MissingExtra(EnvironmentMissing):
    """A Python package from an optional extra is not installed."""

    def __init__(self, package: str, extra: str, *, purpose: str | None = None) -> None:
        what = f"{purpose} needs " if purpose else ""
        super().__init__(
            f"{what}the Python package '{package}', which is not installed",
            hint=f"install it with: pip install 'llmops[{extra}]'",
        )
        self.package = package
        self.extra = extra


@dataclass
class Problem:
    """One problem found in a file: where it is and what is wrong."""

    file: str
    line: int | None
    field: str | None
    message: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {what}"


class ProfileProblems(UsageError):
    """One or more problems in profile or workspace files, each on its own line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.render() for p in problems))


def require_module(module: str, *, package: str | None = None, extra: str, purpose: str | None = None):
    """Import an optional dependency, or raise MissingExtra naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] != module.split(".")[0]:
            raise EnvironmentMissing(
                f"'{module}' is installed but failed to import ({exc})",
                hint=f"reinstall it with: pip install --force-reinstall 'llmops[{extra}]'",
            ) from exc
        raise MissingExtra(package or module, extra, purpose=purpose) from exc
