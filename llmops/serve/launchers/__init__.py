"""Small scripts an engine environment's Python runs (they import nothing from llmops).

They live apart from `llmops/serve/engines/`: a script's own folder comes first on sys.path, and that one
holds a `vllm.py` that would shadow the real vllm package.
"""
