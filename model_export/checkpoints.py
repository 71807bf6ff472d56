"""Checks on a fine-tuned checkpoint that training and export both make before they use it."""

from __future__ import annotations

from typing import Any

from model_export.errors import ModelExportError
from moodtune.labels import LABELS, NUM_LABELS, canonical_label


def check_checkpoint(checkpoint: str) -> Any:
    """Load the checkpoint's config and check it is a 7-label classifier in moodtune's label order."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(checkpoint)
    except (OSError, ValueError) as exc:
        raise ModelExportError(
            f"{checkpoint}: cannot read a model config there ({exc}). Pass a directory written by "
            "`python -m model_export.train` (config.json, model weights, tokenizer files)."
        ) from exc
    if config.num_labels != NUM_LABELS:
        raise ModelExportError(
            f"{checkpoint}: the classifier has {config.num_labels} labels, moodtune needs {NUM_LABELS} "
            f"({', '.join(LABELS)}). Fine-tune it with `python -m model_export.train` first."
        )
    names = [config.id2label[i] for i in range(NUM_LABELS)]
    mapped = [canonical_label(n) for n in names]
    if mapped != list(LABELS):
        raise ModelExportError(
            f"{checkpoint}/config.json: id2label {names} is not moodtune's order {list(LABELS)}. Outputs "
            "would be read as the wrong emotions; use `python -m model_export.train` (it writes it)."
        )
    return config


def check_max_length(checkpoint: str, config: Any, max_length: int, name: str = "max length") -> None:
    """Refuse a token limit the model's position embeddings cannot hold (it would fail at inference);
    ``name`` is how the message calls the limit (train: its ``--max-length`` flag)."""
    limit = getattr(config, "max_position_embeddings", None)
    if isinstance(limit, int) and max_length > limit:
        raise ModelExportError(
            f"{checkpoint}: {name} {max_length} is above the model's max_position_embeddings {limit}; "
            f"texts that long cannot be classified. Pass --max-length {limit} or less."
        )
