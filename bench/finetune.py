"""Fine-tuning benchmark: ``model_export.train.fit`` on the KoELECTRA-Small shape, synthetic examples.

    python -m bench.finetune                 # 63,000 examples x 3 epochs (meant for a GPU)
    python -m bench.finetune --quick         # a few hundred examples on the CPU, to check it runs

The model is ``model_export.shapes``' random-weight KoELECTRA-Small (vocab 35000, embedding 128, hidden
256, 12 layers, 4 heads, intermediate 1024); the examples are random token ids with lengths spread over
8..max length and random labels. The weights and tokens do not matter for the time: the shape, the
batch and the sequence lengths do. The loop is the real one (``fit``: length-grouped batches, dynamic
padding, AdamW, warmup, validation each epoch), on CUDA with bf16 autocast when a GPU is present, else
on the CPU. Reported per batch size: the wall time of ``fit`` (training and the per-epoch validation),
training samples/s (training steps only, as ``fit`` measures it) and the wall time for all epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import CACHE

SHAPE = "koelectra-small"
GPU_DEFAULTS = {"examples": 63_000, "epochs": 3, "batch_sizes": "32,128"}
QUICK = {"examples": 320, "epochs": 1, "batch_sizes": "32"}


def synthetic(n: int, max_length: int, vocab: int, seed: int) -> Any:
    """``n`` encoded examples: [CLS] random ids [SEP], lengths uniform in 8..max_length, random labels."""
    from model_export.train import Encoded
    from moodtune.labels import NUM_LABELS

    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, max_length + 1, size=n)
    ids = [[2, *rng.integers(5, vocab, size=int(k) - 2).tolist(), 3] for k in lengths]
    return Encoded(
        ids=ids,
        labels=rng.integers(0, NUM_LABELS, size=n).astype(np.int64),
        weights=np.ones(n, dtype=np.float32),
    )


def device_name(cpu: bool) -> str:
    import torch

    if torch.cuda.is_available() and not cpu:
        return f"CUDA {torch.cuda.get_device_name(0)}, bf16 autocast"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU, {torch.get_num_threads()} threads of {os.cpu_count()} cores ({cpu})"


def run_one(
    checkpoint: Path, examples: int, epochs: int, batch_size: int, max_length: int, progress: bool
) -> dict[str, Any]:
    """Time one fine-tuning run with ``fit`` at ``batch_size`` (on the device ``train.device`` picks)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from model_export import train as train_module
    from model_export.train import TrainConfig, fit, set_seed

    cuda = train_module.device().type == "cuda"

    set_seed(0)  # as model_export.train does (deterministic kernels where torch has them)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
    vocab = model.config.vocab_size
    train = synthetic(examples, max_length, vocab, seed=1)
    val = synthetic(max(64, examples // 100), max_length, vocab, seed=2)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, max_length=max_length, lr=5e-5, progress=progress)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fit(model, tokenizer, train, val, cfg, desc=f"batch {batch_size}")
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    return {
        "batch_size": batch_size,
        "examples": examples,
        "epochs": len(result.history),
        "fit_seconds": round(wall, 2),
        "train_samples_per_second": result.samples_per_second,
        "epoch_seconds": [r.seconds for r in result.history],
        "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
    }


def render(rows: list[dict[str, Any]], device: str, max_length: int) -> str:
    import torch

    out = [
        f"### Fine-tuning: KoELECTRA-Small shape, model_export.train.fit — {device}",
        f"torch {torch.__version__}, Python {platform.python_version()}; synthetic examples, "
        f"8–{max_length} tokens (uniform), validation on 1% each epoch",
        "",
        "| batch | examples × epochs | fit wall s | training samples/s | s per epoch |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        epochs = ", ".join(f"{s:.1f}" for s in r["epoch_seconds"])
        out.append(
            f"| {r['batch_size']} | {r['examples']:,} × {r['epochs']} | {r['fit_seconds']:.1f} "
            f"| {r['train_samples_per_second']:,.0f} | {epochs} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.finetune", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="CPU check: 320 examples x 1 epoch, batch 32")
    parser.add_argument("--examples", type=int, help="training examples (default 63,000; --quick 320)")
    parser.add_argument("--epochs", type=int, help="epochs (default 3; --quick 1)")
    parser.add_argument("--batch-sizes", help="comma-separated (default 32,128; --quick 32)")
    parser.add_argument("--max-length", type=int, default=64, help="longest synthetic example (tokens)")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    import torch

    defaults = QUICK if args.quick else GPU_DEFAULTS
    if args.quick:  # the CPU check, even where there is a GPU
        from model_export import train as train_module

        train_module.device = lambda: torch.device("cpu")
    examples = args.examples or defaults["examples"]
    epochs = args.epochs or defaults["epochs"]
    batch_sizes = [int(b) for b in (args.batch_sizes or defaults["batch_sizes"]).split(",")]
    if examples < 1 or epochs < 1 or min(batch_sizes) < 1 or args.max_length < 8:
        parser.error("--examples, --epochs and batch sizes must be at least 1, --max-length at least 8")
    if not args.quick and not torch.cuda.is_available() and args.examples is None:
        print(
            "no GPU: 63,000 x 3 epochs would take hours on these CPUs; use --quick, or give --examples",
            file=sys.stderr,
        )
        return 2

    from model_export.shapes import random_checkpoint

    checkpoint = CACHE / f"{SHAPE}-checkpoint"
    if not (checkpoint / "config.json").is_file():
        random_checkpoint(checkpoint, SHAPE, seed=0)
    device = device_name(cpu=args.quick)
    print(f"fine-tuning on {device} …", file=sys.stderr)
    rows = [run_one(checkpoint, examples, epochs, b, args.max_length, args.progress) for b in batch_sizes]
    print(render(rows, device, args.max_length))
    if args.json:
        args.json.write_text(json.dumps({"device": device, "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
