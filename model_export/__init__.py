"""Export-time tools: datasets, fine-tuning, ONNX export + INT8 quantization, the demo model.

Unlike ``moodtune``, this package may import torch, transformers and optimum. Its modules, each run
with ``python -m model_export.<module>`` where it has a command line:

* ``datasets`` — the AI-Hub readers, the demo TSV, splits and balancing;
* ``train`` — fine-tuning (``--feedback`` adds the lyrics of answered songs, labelled through the
  exported feedback by the loop's rule: ``feedback``, ``learn``);
* ``loop`` and ``learn`` — the feedback loop simulated through the local stack, and its learning rule;
* ``export`` — ONNX export, INT8 quantization, parity and accuracy gates, the bundle (``bundle_writer``);
* ``metrics`` and ``checkpoints`` — what training and export both measure and check;
* ``demo``, ``demo_report``, ``tokenizer``, ``toy``, ``shapes`` — the demo bundle and test models;
* ``corpus_quality`` — the demo corpus's quality gates.
"""
