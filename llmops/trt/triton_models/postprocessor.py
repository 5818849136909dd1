"""Triton python backend `postprocessor`: logits, attention_mask -> next_token_id, text_output.

One forward step of the logits-only engine: the greedy next token after each prompt's last real position.
"""

from pathlib import Path

import numpy as np


def next_tokens(logits, attention_mask):
    """argmax of the logits at each row's last unmasked position (right padding)."""
    logits = np.asarray(logits)
    last = np.asarray(attention_mask).sum(axis=1).astype(np.int64) - 1
    rows = logits[np.arange(logits.shape[0]), np.maximum(last, 0)]
    return np.argmax(rows, axis=-1).astype(np.int64)


def decode(tokenizer, token_ids):
    return np.array([[tokenizer.decode([int(t)]).encode("utf-8")] for t in token_ids], dtype=object)


class TritonPythonModel:
    def initialize(self, args):
        from transformers import AutoTokenizer

        path = Path(args["model_repository"]) / args["model_version"] / "tokenizer"
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)

    def execute(self, requests):
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            logits = pb_utils.get_input_tensor_by_name(request, "logits").as_numpy()
            mask = pb_utils.get_input_tensor_by_name(request, "attention_mask").as_numpy()
            ids = next_tokens(logits.astype(np.float32), mask)
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("next_token_id", ids.reshape(-1, 1)),
                        pb_utils.Tensor("text_output", decode(self.tokenizer, ids)),
                    ]
                )
            )
        return responses
