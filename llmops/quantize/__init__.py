"""`llmops quantize`: GPTQ (llm-compressor or GPTQModel) and bitsandbytes, with a quality and size report.

`plan.py` resolves what will run (pure, no torch); `run.py` does it; each quantizer is one module
registered in `registry.py`; `profile.py` names and writes the model profile for the output.
Importing this package imports no heavy library.
"""

from llmops.quantize.plan import QuantizeFlags, QuantizePlan, make_plan, plan_quantize
from llmops.quantize.report import QuantizeReport, report_rows
from llmops.quantize.run import run_quantize

__all__ = [
    "QuantizeFlags",
    "QuantizePlan",
    "QuantizeReport",
    "make_plan",
    "plan_quantize",
    "report_rows",
    "run_quantize",
]
