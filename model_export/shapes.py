"""Random-weight bundles with real model shapes (KoELECTRA-Small by default), for benchmarks.

The weights are random, so the outputs mean nothing; the graph, the file sizes, the tokenizer size and the
latency are those of the real model. Built through the same export code as a fine-tuned checkpoint.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from model_export.errors import ModelExportError
from model_export.export import ExportOptions, export_bundle
from model_export.tokenizer import synthetic_wordpiece
from moodtune.emotion.bundle import BundleError, load_bundle
from moodtune.labels import NUM_LABELS

# ElectraConfig fields of the published KoELECTRA v3 discriminators (see /work/shared/REFERENCE.md).
SHAPES: dict[str, dict[str, int]] = {
    "tiny": {  # for tests: seconds to train and export
        "vocab_size": 2000,
        "embedding_size": 32,
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
    },
    "koelectra-small": {
        "vocab_size": 35000,
        "embedding_size": 128,
        "hidden_size": 256,
        "num_hidden_layers": 12,
        "num_attention_heads": 4,
        "intermediate_size": 1024,
        "max_position_embeddings": 512,
    },
    "koelectra-base": {
        "vocab_size": 35000,
        "embedding_size": 768,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
    },
}


def random_checkpoint(out_dir: Path, shape: str = "koelectra-small", seed: int = 0) -> Path:
    """Save a random-weight ElectraForSequenceClassification of ``shape`` with a matching tokenizer."""
    from transformers import ElectraConfig, ElectraForSequenceClassification

    from model_export.demo import fast_tokenizer
    from model_export.train import ID2LABEL, LABEL2ID, save_checkpoint

    if shape not in SHAPES:
        raise ModelExportError(f"unknown shape {shape!r}; choose one of {sorted(SHAPES)}.")
    dims = SHAPES[shape]
    torch.manual_seed(seed)
    config = ElectraConfig(**dims, num_labels=NUM_LABELS, id2label=dict(ID2LABEL), label2id=dict(LABEL2ID))
    model = ElectraForSequenceClassification(config).eval()
    tokenizer = fast_tokenizer(synthetic_wordpiece(dims["vocab_size"], seed=seed))
    return save_checkpoint(model, tokenizer, out_dir, max_length=128)


def _cached(out_dir: Path, shape: str, seed: int, reduce_range: bool) -> bool:
    try:
        bundle = load_bundle(out_dir)
    except BundleError:
        return False
    manifest = bundle.manifest
    return (
        manifest.get("source", {}).get("random_shape") == {"shape": shape, "seed": seed}
        and manifest.get("quantization", {}).get("reduce_range", False) == reduce_range
    )


def build_random_bundle(
    out_dir: Path, shape: str = "koelectra-small", seed: int = 0, reduce_range: bool = True
) -> Path:
    """A random-weight INT8 bundle of ``shape`` at ``out_dir`` (7-bit weights unless ``reduce_range``
    is False, as the export does); reused when one with the same shape, seed and weight range is
    already there. Returns ``out_dir``."""
    out_dir = Path(out_dir)
    if _cached(out_dir, shape, seed, reduce_range):
        return out_dir
    work = Path(tempfile.mkdtemp(prefix="moodtune-shape-"))
    try:
        checkpoint = random_checkpoint(work / "checkpoint", shape, seed)
        export_bundle(
            ExportOptions(
                checkpoint=str(checkpoint),
                out_dir=out_dir,
                prefix=f"random-{shape}",
                min_agreement=0.0,  # random weights: parity is recorded, not required
                reduce_range=reduce_range,
                latency_texts=4,
                latency_repeats=2,
                source_extra={"random_shape": {"shape": shape, "seed": seed}},
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "artifacts/koelectra-small-random")
    built = build_random_bundle(target)
    print(built, json.dumps(load_bundle(built).manifest["metrics"]["parity"]))
