"""Triton python backend `tokenizer`: text_input (string) -> input_ids, attention_mask (int64, right-padded).

Padding uses the end-of-sequence token when the tokenizer has none (SmolLM2); prompts are cut at max_seq,
the engine's largest sequence length (a config.pbtxt parameter).
"""

import json
from pathlib import Path

import numpy as np


def load_tokenizer(path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def texts_from(array):
    """A [batch, 1] array of bytes (Triton TYPE_STRING) as a list of str."""
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(array).reshape(-1)]


def encode(tokenizer, texts, max_seq):
    batch = tokenizer(list(texts), return_tensors="np", padding=True, truncation=True, max_length=max_seq)
    return batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.max_seq = int(config["parameters"]["max_seq"]["string_value"])
        self.tokenizer = load_tokenizer(Path(args["model_repository"]) / args["model_version"] / "tokenizer")

    def execute(self, requests):
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy()
            ids, mask = encode(self.tokenizer, texts_from(text), self.max_seq)
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("input_ids", ids),
                        pb_utils.Tensor("attention_mask", mask),
                    ]
                )
            )
        return responses
