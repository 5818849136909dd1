from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from llmops.errors import UsageError
from llmops.quantize.texts import (
    BUILTIN_CALIBRATION,
    BUILTIN_EVAL,
    builtin,
    load_text_set,
    read_text_set,
    token_windows,
)


def test_builtin_texts_ship_and_differ() -> None:
    calib, held_out = builtin(BUILTIN_CALIBRATION), builtin(BUILTIN_EVAL)
    assert len(calib.text.split()) > 3000
    assert len(held_out.text.split()) > 1000
    assert calib.sha256 != held_out.sha256
    # held out: no paragraph of the evaluation text appears in the calibration text
    for paragraph in held_out.text.split("\n\n"):
        assert paragraph.strip()[:80] not in calib.text


def test_plain_text_file(tmp_path: Path) -> None:
    path = tmp_path / "calib.txt"
    path.write_text("Some prose.\n\nMore prose.\n", encoding="utf-8")
    text = read_text_set(path, "calibration")
    assert text.text.startswith("Some prose.")
    assert text.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_jsonl_file_takes_text_fields_and_strings(tmp_path: Path) -> None:
    path = tmp_path / "calib.jsonl"
    path.write_text('{"text": "first"}\n\n"second"\n{"content": "third"}\n', encoding="utf-8")
    text = read_text_set(path, "calibration")
    assert text.text == "first\n\nsecond\n\nthird"
    assert text.documents == 3


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "is empty"),
        ("blank.txt", b"  \n\n\t\n", "is empty"),
        ("weights.bin", b"\x00\x01\x02GGUF", "not text"),
        ("latin1.txt", "line one\ncaf\xe9\n".encode("latin-1"), ":2: calibration file is not UTF-8"),
        ("bad.jsonl", b'{"text": "ok"}\n{not json}\n', ":2: not valid JSON"),
        ("notext.jsonl", b'{"text": "ok"}\n{"n": 1}\n', ":2: calibration line has no text"),
        ("empty.jsonl", b'{"text": ""}\n', "is empty"),
    ],
)
def test_bad_files_are_usage_errors_with_where(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UsageError) as exc:
        read_text_set(path, "calibration")
    assert exc.value.exit_code == 2
    assert message in exc.value.message
    assert str(path) in exc.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_text_set(tmp_path / "nope.txt", BUILTIN_CALIBRATION, "calibration")


def test_windows_are_disjoint_when_the_text_is_long_enough() -> None:
    ids = list(range(1000))
    windows = token_windows(ids, 4, 100)
    assert [w[0] for w in windows] == [0, 300, 600, 900]
    assert all(len(w) == 100 for w in windows)


def test_windows_overlap_when_the_text_is_short_and_never_repeat() -> None:
    ids = list(range(150))
    windows = token_windows(ids, 8, 100)
    assert len(windows) == len({w[0] for w in windows})
    assert windows[0][0] == 0 and windows[-1][-1] == 149


def test_window_longer_than_text_is_an_error() -> None:
    with pytest.raises(ValueError, match="fewer than one window"):
        token_windows(list(range(10)), 2, 100)
