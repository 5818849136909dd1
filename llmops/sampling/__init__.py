"""Sampling parameters: what each one means, its valid range, the guide's presets, which endpoint kinds
accept which (and under what name), and the arithmetic of logprobs and answer diversity.

Pure functions and tables, no I/O: `llmops try`, the playground and anything that builds a request use them.
"""

from llmops.sampling.confidence import Band, band, confidence, token_probability
from llmops.sampling.dialects import DIALECTS, Dialect, dialect_for_engine, dialect_for_provider
from llmops.sampling.diversity import Diversity, diversity
from llmops.sampling.params import PARAMS, Param, check_value, parse_value
from llmops.sampling.presets import PRESETS, Preset

__all__ = [
    "DIALECTS",
    "PARAMS",
    "PRESETS",
    "Band",
    "Dialect",
    "Diversity",
    "Param",
    "Preset",
    "band",
    "check_value",
    "confidence",
    "dialect_for_engine",
    "dialect_for_provider",
    "diversity",
    "parse_value",
    "token_probability",
]
