"""Fold the tricks that make a pattern miss: case, width forms, invisible and look-alike characters, s p a c i n g.

The guard matches its rules against this folded copy; the request itself is never rewritten.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Cyrillic and Greek letters that look like Latin ones (NFKC keeps them apart), lower case after casefold.
_CONFUSABLES = {
    "а": "a",
    "в": "b",
    "е": "e",
    "ё": "e",
    "к": "k",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "с": "c",
    "т": "t",
    "у": "y",
    "х": "x",
    "і": "i",
    "ї": "i",
    "ј": "j",
    "ѕ": "s",
    "ԁ": "d",
    "ԛ": "q",
    "ԝ": "w",
    "ɡ": "g",
    "ι": "i",
    "ο": "o",
    "ν": "v",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "α": "a",
    "ε": "e",
    "κ": "k",
    "χ": "x",
}
# Digits and symbols used as letters (1gn0r3): applied to a second copy only, so numbers stay numbers.
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)


@lru_cache(maxsize=1)
def _invisible_table() -> dict[int, str | None]:
    """Drop format characters (zero-width, soft hyphen, BOM, bidi controls, tags) and variation selectors;
    turn every kind of space and line break into a plain space."""
    table: dict[int, str | None] = {}
    for code in range(0x30000):
        cat = unicodedata.category(chr(code))
        if cat == "Cf" or 0xFE00 <= code <= 0xFE0F or code == 0x034F:
            table[code] = None
        elif cat in ("Zs", "Zl", "Zp") or chr(code) in "\t\n\r\x0b\x0c\x85":
            table[code] = " "
    table.update(dict.fromkeys(range(0xE0000, 0xE0080)))  # tag characters
    table.update(dict.fromkeys(range(0xE0100, 0xE01F0)))  # variation selectors supplement
    return table


@lru_cache(maxsize=1)
def _fold_table() -> dict[int, str | None]:
    """The invisible-character table plus look-alike Cyrillic and Greek letters mapped to Latin."""
    return {**_invisible_table(), **{ord(src): dst for src, dst in _CONFUSABLES.items()}}


# Runs of three or more single characters separated by spaces or light punctuation: "i g n o r e", "i.g.n.o.r.e".
_SPACED = re.compile(r"(?<!\w)(?:\w[ .\-_*·,]{1,3}){2,}\w(?!\w)")
_SPACES = re.compile(r" {2,}")
# Chinese and Japanese put no spaces between words: a space between two such characters is a disguise.
_CJK = r"\u3001-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff0f"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}]) +(?=[{_CJK}])")
_SEPARATORS = re.compile(r"[ .\-_*·,]")


def _join_spaced(match: re.Match[str]) -> str:
    """'i g n o r e  a l l' -> 'ignore all': one separator joins letters, two spaces separate words."""
    return " ".join(_SEPARATORS.sub("", word) for word in _SPACES.split(match.group(0)))


def fold(text: str) -> str:
    """The canonical form the request rules match: NFKC, casefolded, invisible characters gone,
    spaces unified, letter-by-letter spacing collapsed, runs of spaces squeezed."""
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    text = text.translate(_fold_table())
    text = _CJK_GAP.sub("", _SPACED.sub(_join_spaced, text))
    return _SPACES.sub(" ", text).strip()


def leet(folded: str) -> str:
    """A second copy with digits and symbols read as letters; rules match either copy."""
    return folded.translate(_LEET)


def fold_keep_case(text: str) -> str:
    """For the response leak rules, whose shapes are case-sensitive: NFKC and invisible characters only."""
    return unicodedata.normalize("NFKC", text).translate(_invisible_table())
