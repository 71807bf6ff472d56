"""Export-time tools: datasets, fine-tuning, ONNX export + INT8 quantization, the demo model.

Unlike ``moodtune``, this package may import torch, transformers and optimum.
"""
