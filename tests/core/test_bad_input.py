"""Bad input is one line, exit 2, naming the path: never "internal error" (issue 11)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def alias_bomb(levels: int = 9) -> str:
    """The 'billion laughs' in YAML: nine levels of nine aliases, about 350 bytes, 9**9 values expanded."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghijk"[: levels - 1]:
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text


def assert_usage_error(result, path: Path | str, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert str(path) in result.stderr
    for needle in needles:
        assert needle in result.stderr


@pytest.mark.parametrize("where", ["workspace", "profile"])
def test_yaml_alias_bomb_is_refused_in_well_under_a_second(where: str, tmp_path: Path) -> None:
    bomb = alias_bomb()
    assert len(bomb) < 500
    if where == "workspace":
        path = Path("llmops.yaml")
        path.write_text(bomb)
        args = ("plan", "smollm2", "--json")
    else:
        path = tmp_path / "models" / "bomb.yaml"
        path.parent.mkdir()
        path.write_text("name: bomb\n" + bomb)
        args = ("profiles", "validate", str(tmp_path))
    started = time.monotonic()
    result = run(*args)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert_usage_error(result, path, "expands to more than 100,000 values through its aliases")


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    path = tmp_path / "nodes" / "pair.yaml"
    path.parent.mkdir()
    path.write_text("name: pair\ncpu: &cpu {cores: 8, ram_gib: 32}\nlabels: {a: b}\n")
    assert run("profiles", "validate", str(tmp_path)).exit_code == 0


def test_oversized_and_binary_workspace_files_are_refused() -> None:
    Path("llmops.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert_usage_error(run("plan", "smollm2"), "llmops.yaml", "binary file, not YAML text")
    Path("llmops.yaml").write_text("model: smollm2\n# " + "x" * (1024 * 1024) + "\n")
    assert_usage_error(run("plan", "smollm2"), "llmops.yaml", "a profile or llmops.yaml is at most 1,048,576")
    Path("llmops.yaml").write_bytes(b"model: caf\xe9\n")
    assert_usage_error(run("plan", "smollm2"), "llmops.yaml", "not UTF-8 text")


def test_validate_lists_a_binary_files_problem_and_every_other_files_problems(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    (nodes / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (nodes / "typo.yaml").write_text("name: typo\ncpu: {cores: 2, ram_gb: 4}\n")
    (nodes / "good.yaml").write_text("name: good\ncpu: {cores: 2, ram_gib: 4}\n")
    result = run("profiles", "validate", str(tmp_path))
    assert_usage_error(result, nodes / "binary.yaml", "binary file, not YAML text")
    assert f"{nodes / 'typo.yaml'}:2: cpu.ram_gb: unknown key; did you mean 'ram_gib'?" in result.stderr
    assert "checked 3 file(s): 3 problem(s)" in result.stderr  # binary + unknown key + missing ram_gib


def test_init_into_a_missing_folder_or_over_a_folder_is_exit_2(tmp_path: Path) -> None:
    assert_usage_error(run("init", "nofolder/x.yaml"), "nofolder", "does not exist", "mkdir -p")
    assert not Path("nofolder").exists()
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert_usage_error(run("init", "--force", str(folder)), folder, "is a folder, not a file")
    assert (folder / "keep.txt").read_text() == "mine"


def test_init_force_replaces_the_file_atomically(tmp_path: Path) -> None:
    target = tmp_path / "llmops.yaml"
    target.write_text("# mine\n")
    assert run("init", str(target), "--force").exit_code == 0
    assert target.read_text().startswith("# llmops.yaml") and not list(tmp_path.glob(".*partial*"))


def test_plan_on_a_corrupt_gguf_or_a_config_that_is_not_an_object(tmp_path: Path) -> None:
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    assert_usage_error(run("plan", str(gguf), "--node", "local-cpu"), gguf, "not a readable GGUF file")
    not_gguf = tmp_path / "text.gguf"
    not_gguf.write_text("hello")
    assert_usage_error(
        run("plan", str(not_gguf), "--node", "local-cpu"), not_gguf, "not a readable GGUF file"
    )
    for i, content in enumerate(("[1, 2, 3]", '"a string"', '{"text_config": [1]}')):
        ckpt = tmp_path / f"ckpt{i}"
        ckpt.mkdir()
        (ckpt / "config.json").write_text(content)
        assert_usage_error(
            run("plan", str(ckpt), "--node", "h100-80gb-x8"), ckpt / "config.json", "expected a JSON object"
        )
    bad_types = tmp_path / "ckpt-types"
    bad_types.mkdir()
    config = {
        "hidden_size": "big",
        "num_attention_heads": 8,
        "num_hidden_layers": 2,
        "vocab_size": 100,
    }
    (bad_types / "config.json").write_text(json.dumps(config))
    assert_usage_error(
        run("plan", str(bad_types), "--node", "h100-80gb-x8"), bad_types / "config.json", "hidden_size"
    )


def test_serve_k8s_output_paths(tmp_path: Path) -> None:
    file_path = tmp_path / "notes.txt"
    file_path.write_text("mine")
    result = run("serve", "llama-8b", "--k8s", "-o", str(file_path))
    assert_usage_error(result, file_path, "is a file, not a folder")
    assert file_path.read_text() == "mine"
    missing = tmp_path / "missing" / "deploy.yaml"
    assert_usage_error(
        run("serve", "llama-8b", "--k8s", "-o", str(missing)), missing.parent, "does not exist"
    )
    target = tmp_path / "deploy.yaml"
    assert run("serve", "llama-8b", "--k8s", "-o", str(target)).exit_code == 0
    assert "kind: Deployment" in target.read_text()
    again = run("serve", "llama-8b", "--k8s", "-o", str(target))
    assert_usage_error(again, target, "already exists")
    assert run("serve", "llama-8b", "--k8s", "-o", str(target), "--force").exit_code == 0
    assert not list(tmp_path.glob(".*partial*"))


def _symlink_loop(folder: Path) -> tuple[Path, Path]:
    """a.yaml -> b.yaml -> a.yaml"""
    folder.mkdir(parents=True, exist_ok=True)
    a, b = folder / "a.yaml", folder / "b.yaml"
    a.symlink_to("b.yaml")
    b.symlink_to("a.yaml")
    return a, b


@pytest.mark.parametrize(
    "args",
    [
        ["profiles", "validate", "{dir}"],
        ["profiles", "validate", "{dir}/models/a.yaml"],
        ["profiles", "validate"],
        ["profiles", "list"],
        ["profiles", "show", "smollm2"],
        ["plan", "smollm2"],
    ],
)
def test_a_symlink_loop_in_a_profile_folder_is_exit_2_naming_the_file(
    args: list[str], tmp_path: Path
) -> None:
    """Issue 19: `profiles validate` gave `internal error: RuntimeError: Symlink loop ...`, exit 1."""
    profiles = tmp_path / "profiles"
    a, _ = _symlink_loop(profiles / "models")
    result = run("--profiles-dir", str(profiles), *(x.format(dir=profiles) for x in args))
    assert_usage_error(result, a, "symbolic link loop")
    assert len([ln for ln in result.stderr.splitlines() if str(a) in ln]) == 1  # one line for the file


def test_a_symlink_loop_as_the_workspace_file_or_an_input_file_is_exit_2(tmp_path: Path) -> None:
    a, _ = _symlink_loop(tmp_path / "loop")
    assert_usage_error(run("--config", str(a), "plan", "smollm2"), a, "symbolic link loop")
    Path("llmops.yaml").symlink_to(a)  # ./llmops.yaml found by default: never silently ignored
    assert_usage_error(run("plan", "smollm2"), "llmops.yaml", "symbolic link loop")
    Path("llmops.yaml").unlink()
    result = run("bench", "--target", "http://127.0.0.1:9", "--model", "m", "--dataset", f"jsonl:{a}")
    assert_usage_error(result, a, "is a symbolic link loop")
    assert_usage_error(run("batch", "submit", str(a), "--provider", "local"), a, "is a symbolic link loop")


def test_the_error_mapper_names_the_file_of_a_symlink_loop() -> None:
    """Path.resolve() raises RuntimeError before Python 3.13 and OSError (ELOOP) from 3.13 on."""
    import errno

    from llmops.errormap import map_exception

    for exc in (
        RuntimeError("Symlink loop from '/p/a.yaml'"),
        OSError(errno.ELOOP, "Too many levels of symbolic links", "/p/a.yaml"),
    ):
        mapped = map_exception(exc)
        assert mapped is not None and mapped.exit_code == 2
        assert mapped.render() == "/p/a.yaml: a symbolic link loop; fix or remove the link"
    assert map_exception(RuntimeError("something else")) is None  # still a bug, reported as one
