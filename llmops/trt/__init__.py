"""`llmops trt build`: ONNX export, parity check, TensorRT engine, Triton model repository.

Each step is its own module (export, parity, engine, triton); `pipeline` chains them for the command.
torch, transformers, onnx, onnxruntime and tensorrt are imported inside the functions that need them.
"""
