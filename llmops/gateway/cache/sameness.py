"""The semantic cache's second check: do two conversations that embed alike ask the same thing?

Cosine similarity of sentence embeddings is blind to exactly the words that change an answer: "5 km in
miles" and "5 miles in km" score 0.98, "safe" and "not safe" 0.99, Paris and London sit close together.
So a candidate above the threshold must also agree, turn by turn, on:

- numbers (digits and number words), in order;
- units and currencies (canonical names: km, kilometre, kilometres are one), in order;
- named entities: capitalised words that are not at the start of a sentence, all-caps acronyms, and a
  small gazetteer of countries, cities, languages and currencies matched in any case;
- the number of negations (not, n't, no, never, without, ...);
- the order of shared words on either side of a direction word ("Madrid to Paris" / "Paris to
  Madrid", "cups in a liter" / "liters in a cup", "Tokyo bigger than London"): two shared content
  words with `to`, `from`, `into`, `in`, `than`, `per`... between them, close together in both texts,
  must come in the same order.

Conversations are compared whole: the same roles in the same order (the partition), every turn through
these rules, and, for more than one turn, every turn's own embedding against the aligned turn's
(`turns_difference`): the embedding of the joined conversation is dominated by its longest turns and keeps
only the newest 256 tokens, so an earlier turn that differs in topic ("I'm baking bread" / "I'm cooking
rice", then the same "How long does it take?") must be caught turn by turn; and a turn longer than the
embedding reads ("Summarise: <long text>" / "Translate: <the same text>") must be the same text.

Each rule errs towards a miss: a paraphrase that reorders its words or names a place differently is
answered by the model again, which costs tokens, never correctness. English-centred; other languages
rely on the numbers and on the similarity threshold. Measured on tests/data/semantic_pairs.jsonl
(docs/gateway-cache.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from llmops.gateway.cache.embed import MAX_TOKENS

_WORD = re.compile(r"[$€£¥°]?[A-Za-z][A-Za-z'’\-]*|\d[\d,]*(?:\.\d+)?%?|[$€£¥]")
_SENTENCE_END = re.compile(r"[.?!:;\n\"“”()\[\]]")
_NUMBER_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "thirteen": "13",
    "fourteen": "14",
    "fifteen": "15",
    "sixteen": "16",
    "seventeen": "17",
    "eighteen": "18",
    "nineteen": "19",
    "twenty": "20",
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "seventy": "70",
    "eighty": "80",
    "ninety": "90",
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
    "billion": "1000000000",
    "dozen": "12",
    "half": "0.5",
    "twice": "2",
    "double": "2",
    "triple": "3",
    "first": "1st",
    "third": "3rd",
}
_UNITS = {
    **dict.fromkeys(("km", "kms", "kilometer", "kilometers", "kilometre", "kilometres"), "km"),
    **dict.fromkeys(("mi", "mile", "miles"), "mile"),
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres"), "m"),
    **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres"), "cm"),
    **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), "mm"),
    **dict.fromkeys(("ft", "foot", "feet"), "ft"),
    **dict.fromkeys(("inch", "inches"), "inch"),
    **dict.fromkeys(("yd", "yard", "yards"), "yard"),
    **dict.fromkeys(("kg", "kgs", "kilogram", "kilograms", "kilo", "kilos"), "kg"),
    **dict.fromkeys(("g", "gram", "grams", "gramme", "grammes"), "g"),
    **dict.fromkeys(("lb", "lbs", "pound", "pounds"), "lb"),
    **dict.fromkeys(("oz", "ounce", "ounces"), "oz"),
    **dict.fromkeys(("stone", "stones"), "stone"),
    **dict.fromkeys(("ton", "tons", "tonne", "tonnes"), "ton"),
    **dict.fromkeys(("l", "liter", "liters", "litre", "litres"), "l"),
    **dict.fromkeys(("ml", "milliliter", "milliliters", "millilitre", "millilitres"), "ml"),
    **dict.fromkeys(("gal", "gallon", "gallons"), "gallon"),
    **dict.fromkeys(("pint", "pints"), "pint"),
    **dict.fromkeys(("cup", "cups"), "cup"),
    **dict.fromkeys(("tbsp", "tablespoon", "tablespoons"), "tbsp"),
    **dict.fromkeys(("tsp", "teaspoon", "teaspoons"), "tsp"),
    **dict.fromkeys(("c", "°c", "celsius", "centigrade"), "celsius"),
    **dict.fromkeys(("f", "°f", "fahrenheit"), "fahrenheit"),
    **dict.fromkeys(("k", "kelvin"), "kelvin"),
    **dict.fromkeys(("$", "usd", "dollar", "dollars", "buck", "bucks"), "usd"),
    **dict.fromkeys(("€", "eur", "euro", "euros"), "eur"),
    **dict.fromkeys(("£", "gbp", "sterling"), "gbp"),
    **dict.fromkeys(("¥", "yen", "jpy"), "jpy"),
    **dict.fromkeys(("yuan", "rmb", "cny", "renminbi"), "cny"),
    **dict.fromkeys(("rupee", "rupees", "inr"), "inr"),
    **dict.fromkeys(("franc", "francs", "chf"), "chf"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "min"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("day", "days"), "day"),
    **dict.fromkeys(("week", "weeks"), "week"),
    **dict.fromkeys(("month", "months"), "month"),
    **dict.fromkeys(("year", "years"), "year"),
    **dict.fromkeys(("mph",), "mph"),
    **dict.fromkeys(("kph", "kmh"), "kph"),
    **dict.fromkeys(("kb", "kilobyte", "kilobytes"), "kb"),
    **dict.fromkeys(("mb", "megabyte", "megabytes"), "mb"),
    **dict.fromkeys(("gb", "gigabyte", "gigabytes"), "gb"),
    **dict.fromkeys(("tb", "terabyte", "terabytes"), "tb"),
    **dict.fromkeys(("bit", "bits"), "bit"),
    **dict.fromkeys(("byte", "bytes"), "byte"),
    **dict.fromkeys(("binary",), "binary"),
    **dict.fromkeys(("decimal",), "decimal"),
    **dict.fromkeys(("hex", "hexadecimal"), "hex"),
    **dict.fromkeys(("octal",), "octal"),
    **dict.fromkeys(("percent", "%"), "percent"),
    **dict.fromkeys(("degree", "degrees"), "degree"),
    **dict.fromkeys(("acre", "acres"), "acre"),
    **dict.fromkeys(("hectare", "hectares"), "hectare"),
    **dict.fromkeys(("calorie", "calories", "kcal"), "kcal"),
    **dict.fromkeys(("watt", "watts", "w"), "w"),
    **dict.fromkeys(("kw", "kilowatt", "kilowatts"), "kw"),
    **dict.fromkeys(("kwh",), "kwh"),
    **dict.fromkeys(("volt", "volts", "v"), "v"),
}
# Single letters are units only right after a number ("5 m", "30 c"), never as words ("a", "I").
# Time words too: "in what year" names no quantity.
_UNIT_AFTER_NUMBER_ONLY = {"m", "g", "l", "c", "f", "k", "s", "h", "w", "v", "min", "second", "seconds"} | {
    w for w, u in _UNITS.items() if u in ("s", "min", "h", "day", "week", "month", "year")
}
_NEGATIONS = {
    "not",
    "no",
    "never",
    "none",
    "nobody",
    "nothing",
    "nowhere",
    "neither",
    "nor",
    "without",
    "cannot",
    "cant",
    "dont",
    "doesnt",
    "didnt",
    "isnt",
    "arent",
    "wasnt",
    "werent",
    "wont",
    "wouldnt",
    "shouldnt",
    "couldnt",
    "hasnt",
    "havent",
    "hadnt",
    "mustnt",
    "neednt",
    "aint",
    "non",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that open sentences or fill questions; never entities, never order evidence.
_STOPWORDS = _words(
    """a an the and or but if then so of to in into on onto at by for from with about as than like
    over under between through during before after above below up down out off again further once
    is are was were be been being am do does did doing have has had having can could will would
    shall should may might must need i me my mine myself you your yours yourself we us our ours
    he him his she her hers it its they them their theirs this that these those there here what
    which who whom whose when where why how all any both each few more most other some such only
    own same very just also too please kindly thanks thank hi hello hey ok okay yes
    give tell show explain write list name describe compose calculate compute share plan suggest
    recommend summarise summarize translate convert find get make help let lets want know use
    best good way what's whats how's hows where's who's it's i'm im i've ive i'd can't does"""
)
_GAZETTEER = _words(
    """afghanistan albania algeria andorra angola argentina armenia australia austria azerbaijan
    bahamas bahrain bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia botswana
    brazil brunei bulgaria burundi cambodia cameroon canada chad chile china colombia congo croatia
    cuba cyprus czechia denmark djibouti dominica ecuador egypt eritrea estonia eswatini ethiopia
    fiji finland france gabon gambia georgia germany ghana greece grenada guatemala guinea guyana
    haiti honduras hungary iceland india indonesia iran iraq ireland israel italy jamaica japan
    jordan kazakhstan kenya kiribati korea kosovo kuwait kyrgyzstan laos latvia lebanon lesotho
    liberia libya liechtenstein lithuania luxembourg madagascar malawi malaysia maldives mali malta
    mauritania mauritius mexico micronesia moldova monaco mongolia montenegro morocco mozambique
    myanmar namibia nauru nepal netherlands holland nicaragua niger nigeria norway oman pakistan palau
    palestine panama paraguay peru philippines poland portugal qatar romania russia rwanda samoa
    senegal serbia seychelles singapore slovakia slovenia somalia spain sudan suriname sweden
    switzerland syria taiwan tajikistan tanzania thailand togo tonga tunisia turkey turkmenistan
    tuvalu uganda ukraine uruguay uzbekistan vanuatu vatican venezuela vietnam yemen zambia zimbabwe
    england scotland wales britain uk usa america europe asia africa antarctica oceania
    london paris berlin madrid rome lisbon dublin amsterdam brussels vienna prague warsaw budapest
    athens stockholm oslo copenhagen helsinki moscow kyiv kiev istanbul ankara cairo lagos nairobi
    johannesburg tokyo osaka kyoto seoul beijing shanghai shenzhen hongkong taipei bangkok hanoi
    manila jakarta singapore delhi mumbai bangalore karachi dhaka dubai riyadh tehran baghdad
    sydney melbourne brisbane perth auckland toronto vancouver montreal ottawa chicago boston
    seattle denver dallas houston miami atlanta phoenix detroit philadelphia washington york
    angeles francisco diego vegas orleans mexico bogota lima santiago aires rio paulo caracas
    havana munich hamburg frankfurt cologne milan naples venice florence barcelona seville valencia
    porto lyon marseille nice geneva zurich edinburgh manchester liverpool glasgow oxford cambridge
    english french german spanish italian portuguese russian chinese mandarin cantonese japanese
    korean arabic hindi bengali urdu turkish dutch polish swedish norwegian danish finnish greek
    hebrew persian thai vietnamese indonesian malay swahili ukrainian czech hungarian romanian
    monday tuesday wednesday thursday friday saturday sunday january february march april june july
    august september october november december
    python java javascript typescript rust golang kotlin swift ruby php perl haskell scala
    linux windows macos android ios"""
)
_NEAR = 7  # tokens apart: closer than this, shared words around a direction word keep their order
_DIRECTION = {
    "to",
    "into",
    "from",
    "than",
    "in",
    "per",
    "vs",
    "versus",
    "over",
    "divided",
    "minus",
    "against",
}


@dataclass(frozen=True)
class Features:
    numbers: tuple[str, ...]
    units: tuple[str, ...]
    entities: frozenset[str]
    negations: int
    words: tuple[tuple[str, int], ...]  # content words (lower case, crude singular) and token positions
    directions: tuple[int, ...]  # token positions of direction words (to, from, than, in, ...)


def _norm_word(word: str) -> str:
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    return w.strip("'-")


def _singular(w: str) -> str:
    if len(w) > 3 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def _number(tok: str) -> str:
    t = tok.replace(",", "").rstrip("%")
    if "." in t:
        t = t.rstrip("0").rstrip(".")
    return t


@lru_cache(maxsize=4096)
def features(text: str) -> Features:
    """What the second check compares, for one message's text."""
    numbers: list[str] = []
    units: list[str] = []
    entities: set[str] = set()
    negations = 0
    words: list[tuple[str, int]] = []
    directions: list[int] = []
    sentence_start = True
    prev_number = False
    pos = -1
    for m in re.finditer(_WORD.pattern + "|" + _SENTENCE_END.pattern, text):
        raw = m.group(0)
        if _SENTENCE_END.fullmatch(raw):
            sentence_start = True
            continue
        if raw[0] in "$€£¥" and len(raw) > 1:  # "$5": the currency, then the number
            units.append(_UNITS[raw[0]])
            raw = raw[1:]
        pos += 1
        if raw[0].isdigit():
            numbers.append(_number(raw))
            if raw.endswith("%"):
                units.append("percent")
            prev_number, sentence_start = True, False
            continue
        word = _norm_word(raw)
        if not word:
            continue
        plain = word.replace("'", "")
        if word in _NUMBER_WORDS:
            numbers.append(_NUMBER_WORDS[word])
        unit = _UNITS.get(word)
        if unit and (word not in _UNIT_AFTER_NUMBER_ONLY or prev_number):
            units.append(unit)
        if plain in _NEGATIONS or word.endswith("n't"):
            negations += 1
        if plain in _GAZETTEER or (
            raw[0].isupper()
            and word not in _STOPWORDS
            and plain != "i"
            and (not sentence_start or (raw.isupper() and len(raw) > 1))
        ):
            entities.add(plain)
        if word not in _STOPWORDS and plain not in _NEGATIONS and word not in _NUMBER_WORDS:
            words.append((_singular(plain), pos))
        elif word in _DIRECTION:
            directions.append(pos)
        prev_number = False
        sentence_start = False
    return Features(
        tuple(numbers), tuple(units), frozenset(entities), negations, tuple(words), tuple(directions)
    )


def _first_positions(f: Features) -> dict[str, int]:
    first: dict[str, int] = {}
    for w, p in f.words:
        first.setdefault(w, p)
    return first


def _around_direction(f: Features, p: int, q: int) -> bool:
    lo, hi = min(p, q), max(p, q)
    return hi - lo < _NEAR and any(lo < d < hi for d in f.directions)


def _order_conflict(a: Features, b: Features) -> tuple[str, str] | None:
    """Two shared words on either side of a direction word in both texts, in opposite orders."""
    first_a, first_b = _first_positions(a), _first_positions(b)
    shared = [w for w in first_a if w in first_b]
    for i, u in enumerate(shared):
        for v in shared[i + 1 :]:
            pa, qa, pb, qb = first_a[u], first_a[v], first_b[u], first_b[v]
            if (qa - pa) * (qb - pb) < 0 and _around_direction(a, pa, qa) and _around_direction(b, pb, qb):
                return (u, v)
    return None


def difference(a: str, b: str) -> str | None:
    """Why two message texts do not ask the same thing (a short reason), or None when they may."""
    if a == b:
        return None
    fa, fb = features(a), features(b)
    if fa.numbers != fb.numbers:
        return "numbers differ"
    if fa.units != fb.units:
        return "units differ"
    if fa.entities != fb.entities:
        return "names differ"
    if fa.negations != fb.negations:
        return "negation differs"
    if _order_conflict(fa, fb):
        return "word order differs"
    return None


def conversation_difference(a: list[str], b: list[str]) -> str | None:
    """The first difference between two conversations' message texts, turn by turn."""
    if len(a) != len(b):
        return "turn count differs"
    for x, y in zip(a, b, strict=True):
        if (why := difference(x, y)) is not None:
            return why
    return None


# The embedding reads at most MAX_TOKENS tokens of a text (the newest: it cuts on the left); a turn that
# may be longer is compared as text, whole: only the same text is the same turn. Two characters a token
# is the dense end (code, numbers); English prose runs nearer four.
LONG_TURN_CHARS = 2 * MAX_TOKENS


def turns_difference(
    a: Sequence[str], b: Sequence[str], a_vectors: Sequence[Any], b_vectors: Sequence[Any], threshold: float
) -> tuple[str | None, float]:
    """(why they differ or None, the weakest turn's similarity): every aligned pair of turns must reach
    `threshold` on its own embedding, and a turn longer than the embedding reads must be the same text.
    The vectors are each turn's own unit vector, in order (one per text)."""
    if len(a) != len(b) or len(a_vectors) != len(a) or len(b_vectors) != len(b):
        return "turn count differs", -1.0
    weakest = 1.0
    for i, (x, y, u, v) in enumerate(zip(a, b, a_vectors, b_vectors, strict=True)):
        if x == y:
            continue
        if max(len(x), len(y)) > LONG_TURN_CHARS:
            return f"turn {i + 1} is longer than the embedding reads and not the same text", -1.0
        similarity = float(u @ v)
        weakest = min(weakest, similarity)
        if similarity < threshold:
            return f"turn {i + 1} of {len(a)} differs ({similarity:.3f})", similarity
    return None, weakest
