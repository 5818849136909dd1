"""How different repeated answers are: the figure that makes "temperature 0 repeats, 1.2 does not" visible.

- distinct answers: how many different texts came back (after trimming surrounding whitespace);
- distinct-word ratio (distinct-1): distinct words / all words over every answer. 1.0 means no word was
  used twice; repeating one answer N times gives about 1/N of the single answer's ratio.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class Diversity:
    answers: int
    distinct_answers: int
    words: int
    distinct_words: int

    @property
    def distinct_word_ratio(self) -> float | None:
        return self.distinct_words / self.words if self.words else None

    @property
    def identical(self) -> bool:
        """Every answer was the same text (trivially true for one answer)."""
        return self.distinct_answers <= 1


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks: the unit of distinct-1."""
    return _WORD.findall(text.lower())


def diversity(texts: Sequence[str]) -> Diversity:
    all_words = [w for t in texts for w in words(t)]
    return Diversity(
        answers=len(texts),
        distinct_answers=len({t.strip() for t in texts}),
        words=len(all_words),
        distinct_words=len(set(all_words)),
    )
