"""The issue's example config, verbatim, with the official openai and anthropic SDKs, streaming and not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.conftest import KEY, run_gateway

EXAMPLE = """
gateway:
  port: 4000
  keys:
    - name: ci
      key_env: LLMOPS_GATEWAY_KEY_CI   # the client key's value lives in this variable (or key_sha256: ...)
      rpm: 60
      tpm: 100000
      budget_usd: 5
  routes:
    - name: chat                         # what clients put in "model"
      deployments:
        - url: http://127.0.0.1:8001/v1  # any OpenAI-compatible server
          model: stub-model
        - url: http://127.0.0.1:8002/v1
          model: stub-model
      fallbacks: [backup]
    - name: backup
      deployments:
        - url: http://127.0.0.1:8003/v1
          model: stub-model
"""
