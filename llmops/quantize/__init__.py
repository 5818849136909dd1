"""`llmops quantize`: GPTQ (llm-compressor or GPTQModel) and bitsandbytes, with a quality and size report.

`plan.py` resolves what will run (pure, no torch); `run.py` does it; each quantizer is one module
registered in `registry.py`.
"""
