"""Find the metric names in a PromQL expression and check them against the catalog.

Not a full PromQL parser: a tokenizer that knows which identifiers are functions, keywords, label names
or grouping lists, which is all it takes to list the selectors, their label matchers, whether each has a
range (`[5m]`) and which function encloses it. That is enough to catch the mistakes that make published
rule sets silently match nothing: a renamed metric, a counter without `_total`, a counter read as a gauge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llmops.monitor.catalog import TARGET_LABELS, Metric, Version, exposed, family_of

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<dur>(?:\d+(?:ms|[smhdwy]))+)(?![\w:])
  | (?P<num>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){}\[\],:@])
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
# Functions that take a counter's range and make sense of its resets.
COUNTER_FUNCS = frozenset({"rate", "irate", "increase", "resets"})
# Range functions that must not be given a counter (they treat it as a level).
GAUGE_RANGE_FUNCS = frozenset({"delta", "idelta", "deriv", "predict_linear", "changes"})


@dataclass
class Selector:
    name: str
    matchers: dict[str, str] = field(default_factory=dict)  # label -> value (as written, unquoted)
    ranged: bool = False
    func: str | None = None  # the innermost enclosing function


class PromqlError(ValueError):
    pass


_GRAFANA_RANGE = re.compile(r"\$\{?__(?:rate_)?interval\}?|\$\{?__range\}?")


def _tokens(expr: str) -> list[tuple[str, str]]:
    expr = _GRAFANA_RANGE.sub("5m", expr)  # dashboards: [$__rate_interval] is a range like any other
    out, pos = [], 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise PromqlError(f"cannot read the expression at {expr[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _unquote(s: str) -> str:
    return s[1:-1]


def selectors(expr: str) -> list[Selector]:
    """Every vector selector in the expression, in order."""
    toks = _tokens(expr)
    stack: list[str | None] = []
    found: list[Selector] = []
    i = 0

    def skip_group(j: int) -> int:
        """Skip a parenthesised label list starting at toks[j] == '('; return the index after it."""
        if j < len(toks) and toks[j][1] == "(":
            while j < len(toks) and toks[j][1] != ")":
                j += 1
            return j + 1
        return j

    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "ident" and text in _GROUPING:
            i = skip_group(i + 1)
            continue
        if kind == "ident" and text.lower() in _KEYWORDS:
            i += 1
            continue
        if kind == "ident" and nxt in ("by", "without") and i + 2 < len(toks):
            # aggregation with the grouping first: sum by (x) (expr)
            j = skip_group(i + 2)
            if j < len(toks) and toks[j][1] == "(":
                stack.append(text)
                i = j + 1
                continue
        if kind == "ident" and nxt == "(":
            stack.append(text)
            i += 2
            continue
        if text == "(":
            stack.append(None)
            i += 1
            continue
        if text == ")":
            if stack:
                stack.pop()
            i += 1
            continue
        if text == "[":
            while i < len(toks) and toks[i][1] != "]":
                i += 1
            i += 1
            continue
        if kind == "ident" or text == "{":
            sel = Selector(name=text if kind == "ident" else "")
            i += 1 if kind == "ident" else 0
            if i < len(toks) and toks[i][1] == "{":
                i += 1
                while i < len(toks) and toks[i][1] != "}":
                    if toks[i][0] == "ident" and i + 2 < len(toks) and toks[i + 2][0] == "str":
                        sel.matchers[toks[i][1]] = _unquote(toks[i + 2][1])
                        i += 3
                    elif toks[i][0] == "str":  # {"name"} (Prometheus 3 quoted name)
                        sel.name = sel.name or _unquote(toks[i][1])
                        i += 1
                    else:
                        i += 1
                i += 1
            if not sel.name:
                sel.name = sel.matchers.pop("__name__", "")
            sel.ranged = i < len(toks) and toks[i][1] == "["
            sel.func = stack[-1] if stack else None
            found.append(sel)
            continue
        i += 1
    return found


def check(
    expr: str,
    *,
    version: Version | None = None,
    recorded: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    """Problems with one expression: unknown names, misused counters and histograms, unknown labels."""
    try:
        sels = selectors(expr)
    except PromqlError as exc:
        return [str(exc)]
    known = exposed(version)
    problems: list[str] = []
    for s in sels:
        if s.name in recorded:
            continue
        metric = known.get(s.name)
        if metric is None:
            problems.append(_unknown(s.name, version))
            continue
        problems += _misuse(s, metric)
    return problems


def _unknown(name: str, version: Version | None) -> str:
    from llmops.monitor.catalog import BY_NAME

    m = BY_NAME.get(name)
    if m is not None and m.kind == "counter":
        return f"'{name}' matches nothing: the counter is exposed as '{name}_total'"
    if m is not None and m.kind == "histogram":
        return f"'{name}' matches nothing: the histogram is exposed as {name}_bucket/_sum/_count"
    fam = family_of(name)
    if fam is not None:
        where = f"vLLM {'.'.join(map(str, version))}" if version else "the newest vLLM"
        also = f"; use '{fam.replaced_by}'" if fam.replaced_by else ""
        return f"'{name}' is not exposed by {where}{also}"
    return f"'{name}' is not a metric in the catalog (llmops.monitor.catalog)"


def _misuse(s: Selector, m: Metric) -> list[str]:
    out: list[str] = []
    cumulative = m.kind in ("counter", "histogram")
    if cumulative and not (s.ranged and s.func in COUNTER_FUNCS):
        out.append(f"'{s.name}' is a {m.kind} series: read it through rate()/increase() over a range")
    if m.kind == "gauge" and s.func in COUNTER_FUNCS:
        out.append(f"'{s.name}' is a gauge: {s.func}() of a gauge is meaningless (use deriv/delta)")
    if cumulative and s.func in GAUGE_RANGE_FUNCS:
        out.append(f"'{s.name}' is cumulative: {s.func}() ignores counter resets (use rate/increase)")
    allowed = set(m.labels) | TARGET_LABELS | ({"le"} if s.name.endswith("_bucket") else set())
    out += [f"'{s.name}' has no label '{k}'" for k in s.matchers if k not in allowed]
    return out
