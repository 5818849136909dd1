"""The guard's named rules: the seed's prompt-injection patterns and response leak shapes, as a baseline.

A pattern list catches the phrasings it was written for and their disguises (the folding in
`normalize`); it does not catch a rephrased attack. It is a baseline to measure against, not a defence.
Request rules match the folded text (casefolded, so they are written in lower case, and `\\W*` between
words so that collapsed s p a c i n g still matches); response rules match the text with its case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Target = Literal["request", "response"]


@dataclass(frozen=True)
class Rule:
    """One named pattern. `name` is what a blocked client and the metric see."""

    name: str
    target: Target
    pattern: re.Pattern[str]
    description: str


def _rule(name: str, target: Target, regex: str, description: str) -> Rule:
    return Rule(name, target, re.compile(regex), description)


_SEP = r"\W*"
_FILLER = r"(?:(?:all|any|of|the|your|my|these|those|every|previous|prior|above|earlier)\W*)*"
_EARLIER = r"(?:previous|prior|above|earlier|preceding|former|original|initial|foregoing|system)"
_ORDERS = r"(?:instructions?|directions?|rules|prompts?|guidelines|commands?|directives?|orders|constraints)"
_DISCLOSE = (
    r"(?:reveal|show|print|display|output|repeat|recite|dump|leak|expose|disclose|share|echo|"
    r"tell\W+me|give\W+me|write\W+out|spell\W+out|copy|paste|type\W+out|list)"
)
_SECRET_PROMPT = (
    r"(?:system\W*prompt|system\W*message|initial\W*(?:instructions|prompt)|hidden\W*(?:instructions|prompt)|"
    r"original\W*(?:instructions|prompt)|secret\W*(?:instructions|prompt)|pre-?prompt|developer\W*message)"
)

BASELINE_RULES: tuple[Rule, ...] = (
    _rule(
        "ignore_previous_instructions",
        "request",
        rf"(?:ignore|forget|skip|override|bypass|drop|abandon)\W*{_FILLER}{_EARLIER}{_SEP}{_ORDERS}",
        "the seed's `ignore previous instructions` and its close variants (forget/override all prior rules)",
    ),
    _rule(
        "disregard_all_prior",
        "request",
        rf"disregard\W*{_FILLER}(?:{_EARLIER}\W*(?:{_ORDERS}|messages?|guidance|context|text|conversation)"
        r"|above\b|everything|what\W*(?:you|i)\W*(?:were|was|have\W*been)\W*told)",
        "the seed's `disregard all prior` (disregard the above / previous / everything before)",
    ),
    _rule(
        "system_prompt_probe",
        "request",
        rf"(?:{_DISCLOSE}\W*(?:me\W*)?(?:all\W*|of\W*)*your\W*(?:[a-z]{{1,12}}?\W*){{0,2}}?{_SECRET_PROMPT}"
        rf"|{_DISCLOSE}\W*(?:me\W*)?(?:all\W*|of\W*)*the\W*(?:[a-z]{{1,12}}?\W*){{0,2}}?{_SECRET_PROMPT}"
        rf"\W*(?:you|that\W*you|which\W*you|above|verbatim|word\W*for\W*word|in\W*full)"
        rf"|what\W*(?:is|are|was|were|'s)\W*your\W*(?:[a-z]{{1,12}}?\W*){{0,2}}?{_SECRET_PROMPT})",
        "the seed's `system prompt` probe, narrowed to asking for *your* prompt (a bare mention passes)",
    ),
    _rule(
        "repeat_above",
        "request",
        r"(?:repeat|print|output|recite|copy)\W*(?:back\W*)?(?:all\W*|the\W*)*(?:words|text|everything|"
        r"content|lines)\W*(?:above|before\W*(?:this|the\W*first))",
        "asking for the hidden text above the conversation ('repeat the words above')",
    ),
    _rule(
        "zh_ignore_instructions",
        "request",
        r"(?:忽略|忽视|忽視|无视|無視|不要理会|不要理會|不理会|忘记|忘記|跳过|跳過|抛开|拋開)掉?(?:你|您)?"
        r"(?:之前|以前|上面|以上|先前|前面|上述|原来|原來|原有|所有|全部|一切)的?(?:所有|全部|一切)?的?"
        r"(?:指令|指示|说明|說明|规则|規則|提示|命令|设定|設定|要求)",
        "instruction override in Chinese (忽略之前的所有指令)",
    ),
    _rule(
        "zh_you_are_assistant",
        "request",
        r"(?:你|您)(?:现在|現在)?是.{0,20}助手",
        "the seed's `你是.*助手` (a role reassignment 'you are ... assistant'), bounded to 20 characters",
    ),
    _rule(
        "ja_ignore_instructions",
        "request",
        r"(?:以前|前|上記|これまで|先|今まで|上|最初)の(?:すべての|全ての|全部の)?"
        r"(?:指示|命令|指令|ルール|設定|プロンプト|制約)(?:を|は)(?:すべて|全て|全部)?(?:無視|忘れ)",
        "instruction override in Japanese (以前の指示を無視して)",
    ),
    _rule(
        "ja_you_are_assistant",
        "request",
        r"あなたは.{0,20}アシスタント",
        "the seed's `あなたは.*アシスタント`, bounded to 20 characters",
    ),
    # Response rules: credential shapes a model must never repeat to a client.
    _rule(
        "openai_api_key",
        "response",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}",
        "an OpenAI-style secret key (sk-..., sk-proj-...)",
    ),
    _rule("anthropic_api_key", "response", r"\bsk-ant-[a-z]+\d*-[A-Za-z0-9_-]{32,}", "an Anthropic key"),
    _rule("aws_access_key", "response", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "an AWS access key id"),
    _rule(
        "github_token",
        "response",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})",
        "a GitHub token",
    ),
    _rule("google_api_key", "response", r"\bAIza[0-9A-Za-z_-]{35}\b", "a Google API key"),
    _rule("slack_token", "response", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", "a Slack token"),
    _rule(
        "private_key",
        "response",
        r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----",
        "a PEM private key block",
    ),
)

#: The rule that matches the gateway's own provider keys (compared in memory, never logged).
PROVIDER_KEY_RULE = "provider_key"

#: The seed's response check, kept only to measure it: it flags ordinary prose ("password", "token").
SEED_LEAK_WORDS = re.compile(r"api[_-]?key|password|secret|token|[A-Za-z0-9]{40}", re.IGNORECASE)


def rule_names() -> list[str]:
    return [r.name for r in BASELINE_RULES] + [PROVIDER_KEY_RULE]
