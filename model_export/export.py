"""Checkpoint -> INT8 ONNX bundle: Optimum export, dynamic quantization, parity validation, atomic write.

    python -m model_export.export --checkpoint DIR --out DIR [--eval FILE] [--min-agreement 0.98]

The bundle is refused (nothing written, exit status 2) when the INT8 model's top-1 agreement with the
PyTorch fp32 model is below ``--min-agreement``.

Weights are quantized with ``reduce_range`` (7-bit) by default. onnxruntime's U8S8 integer matmul on
AVX2 and AVX-512 CPUs without VNNI multiplies with VPMADDUBSW, which adds two u8×s8 products into a
saturating int16; with 8-bit weights that sum can reach 2·255·127 = 64,770 and clip, while a VNNI CPU
accumulates in int32 and never clips. So an 8-bit-weight model gives different probabilities on
different x86 hosts (0.047 on one demo sentence). With 7-bit weights the sum is at most 2·255·64 =
32,640 < 32,767: every x86 kernel computes the same integers, and only float rounding differs.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from model_export.bundle_writer import check_target, publish, stage_bundle, staging_dir
from model_export.calibration import CALIBRATION_FILE, calibration_figures, mixed_figures, softmax
from model_export.checkpoints import check_checkpoint, check_max_length
from model_export.datasets import Example, load_datasets
from model_export.errors import ModelExportError, run_cli, setup_logging
from model_export.metrics import accuracy, classification_metrics, macro_f1, parity
from model_export.parity_texts import PARITY_TEXTS
from moodtune.emotion.bundle import DEFAULT_LINES_PER_CHUNK, MODEL_FILE
from moodtune.emotion.classifier import LEXICAL_KEY, EmotionClassifier
from moodtune.emotion.lexical import LEXICAL_FILE, LexicalHead
from moodtune.labels import LABELS, NUM_LABELS

log = logging.getLogger("model_export.export")

DEFAULT_MIN_AGREEMENT = 0.98
DEFAULT_MAX_LENGTH = 128
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
N_EXAMPLES = 10


@dataclass
class ExportOptions:
    """What to export and how; the CLI flags map one to one."""

    checkpoint: str
    out_dir: Path
    prefix: str = "moodtune"
    eval_file: Path | None = None
    eval_examples: list[Example] | None = None  # in-memory alternative to eval_file
    eval_name: str = "in-memory"  # how the manifest names eval_examples
    named_evals: dict[str, list[Example]] = field(default_factory=dict)  # more labelled sets to score
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    max_length: int | None = None
    weight_type: str = "QInt8"
    per_channel: bool = True
    reduce_range: bool = True  # 7-bit weights: the same integer results on every x86 CPU (module doc)
    lines_per_chunk: int = DEFAULT_LINES_PER_CHUNK  # lyric lines per chunk when the catalog is scored
    save_optimized: bool = True
    opset: int | None = None
    latency_texts: int = 16
    latency_repeats: int = 5
    threads: int = 1
    example_texts: Sequence[str] = PARITY_TEXTS[:N_EXAMPLES]
    extra_metrics: dict[str, Any] = field(default_factory=dict)
    source_extra: dict[str, Any] = field(default_factory=dict)
    # Temperature scaling (model_export.calibration): None reads the checkpoint's calibration.json
    # (written by train and demo from the validation split), else no scaling (1.0).
    temperature: float | None = None
    temperature_fit_on: str = ""
    # The lexical head (moodtune.emotion.lexical) and its fusion weight, fit with the temperature on the
    # validation split (model_export.lexical.fit_fusion); None: the graph alone.
    lexical: LexicalHead | None = None
    lexical_weight: float = 0.0
    lexical_about: dict[str, Any] = field(default_factory=dict)  # how the head was trained and chosen


# --- checkpoint -------------------------------------------------------------------------------------


def load_tokenizer(checkpoint: str, max_length: int | None) -> tuple[Any, int]:
    """The checkpoint's fast tokenizer as a plain ``tokenizers.Tokenizer`` and the max length to use."""
    from transformers import AutoTokenizer

    try:
        hf_tokenizer = AutoTokenizer.from_pretrained(checkpoint, use_fast=True)
    except (OSError, ValueError) as exc:
        raise ModelExportError(
            f"{checkpoint}: no usable tokenizer ({exc}). Save one with the checkpoint."
        ) from exc
    if not hf_tokenizer.is_fast:
        raise ModelExportError(f"{checkpoint}: needs a fast tokenizer (tokenizer.json or vocab.txt).")
    if max_length is None:
        saved = int(getattr(hf_tokenizer, "model_max_length", 0) or 0)
        max_length = saved if 2 <= saved <= 512 else DEFAULT_MAX_LENGTH
    backend = hf_tokenizer.backend_tokenizer
    backend.no_truncation()  # the runtime sets truncation and padding from the manifest
    backend.no_padding()
    return backend, max_length


# --- ONNX -------------------------------------------------------------------------------------------


def export_fp32(checkpoint: str, out_dir: Path, opset: int | None) -> Path:
    """Optimum's ONNX export (task text-classification); returns the fp32 model.onnx."""
    from optimum.exporters.onnx import main_export

    try:
        main_export(
            checkpoint,
            output=out_dir,
            task="text-classification",
            opset=opset,
            do_validation=False,  # validated below against PyTorch, on real texts, with the INT8 model too
            library_name="transformers",
        )
    except ModelExportError:
        raise
    except Exception as exc:  # transformers and Optimum raise OSError, ValueError, KeyError, …
        raise ModelExportError(
            f"{checkpoint}: Optimum could not export it to ONNX ({type(exc).__name__}: {exc}). It must "
            "be a complete ElectraForSequenceClassification-compatible checkpoint (config.json, "
            "model.safetensors or pytorch_model.bin, tokenizer files), as `python -m model_export.train` "
            "writes."
        ) from exc
    model = out_dir / MODEL_FILE
    if not model.is_file():
        raise ModelExportError(f"{out_dir}: Optimum wrote no {MODEL_FILE}.")
    return model


def quantize_int8(
    fp32: Path, out: Path, weight_type: str, per_channel: bool, reduce_range: bool = True
) -> Path:
    """Dynamic INT8 quantization of the un-fused fp32 graph (a fused graph fails or runs slower).
    ``reduce_range``: 7-bit weights, for the same results on every x86 CPU (see the module doc)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        fp32, out, weight_type=QuantType[weight_type], per_channel=per_channel, reduce_range=reduce_range
    )
    return out


# x86 instruction sets that pick onnxruntime's integer matmul kernel, and ARM's dot-product ones.
INT8_CPU_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_info() -> dict[str, Any]:
    """The exporting host's CPU and which of INT8_CPU_FLAGS it has (None where /proc/cpuinfo is not
    readable), so that a cross-machine difference in the manifest's examples can be explained."""
    info: dict[str, Any] = {"machine": platform.machine(), "model": None, "flags": None}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and info["model"] is None:
            info["model"] = value
        elif key in ("flags", "Features") and info["flags"] is None:  # x86, ARM
            info["flags"] = [f for f in INT8_CPU_FLAGS if f in value.split()]
    return info


def save_ort_optimized(model: Path, out: Path) -> Path:
    """Let onnxruntime optimise the graph (EXTENDED level, portable across CPUs) and save the result, so
    serving can load it with optimisation off: faster session creation, same latency."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return out


def ort_session(model: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


# --- validation -------------------------------------------------------------------------------------


def _batches(encoded: dict[str, np.ndarray], lengths: np.ndarray, size: int = 32):
    """Slices of ``encoded`` trimmed to each slice's longest row (less padding, same results)."""
    n = len(lengths)
    for start in range(0, n, size):
        stop = min(start + size, n)
        width = int(lengths[start:stop].max())
        yield {k: v[start:stop, :width] for k, v in encoded.items() if k != LEXICAL_KEY}


def probs_torch(model: Any, encoded: dict[str, np.ndarray], lengths: np.ndarray) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for batch in _batches(encoded, lengths):
            logits = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits
            out.append(softmax(logits.float().numpy()))
    return np.concatenate(out)


def probs_ort(
    session: ort.InferenceSession, encoded: dict[str, np.ndarray], lengths: np.ndarray
) -> np.ndarray:
    names = {i.name for i in session.get_inputs()}
    out = []
    for batch in _batches(encoded, lengths):
        (logits,) = session.run(["logits"], {k: v for k, v in batch.items() if k in names})
        out.append(softmax(logits))
    return np.concatenate(out)


def median_latency_ms(run_one, encoded_one: Sequence[Any], repeats: int) -> float:
    """Median wall time of batch-1 calls over the given inputs, after one warm-up pass."""
    for item in encoded_one:
        run_one(item)
    times = []
    for _ in range(repeats):
        for item in encoded_one:
            start = time.perf_counter()
            run_one(item)
            times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def int8_logits(classifier: EmotionClassifier, examples: Sequence[Example], size: int = 64) -> np.ndarray:
    """The served logits [n, 7] for ``examples`` before the temperature (the INT8 graph's, plus the
    lexical head's times its weight where the bundle has one), in batches of ``size``."""
    parts = [
        classifier.fused_logits(classifier.tokenize([e.text for e in examples[i : i + size]]))
        for i in range(0, len(examples), size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, NUM_LABELS), dtype=np.float32)


def resolve_temperature(opts: ExportOptions) -> tuple[float, str]:
    """The temperature to ship and what it was fit on (see ``ExportOptions.temperature``)."""
    if opts.temperature is not None:
        if not (math.isfinite(opts.temperature) and opts.temperature > 0):
            raise ModelExportError(f"--temperature must be a positive finite number, got {opts.temperature}.")
        return float(opts.temperature), opts.temperature_fit_on or "given by hand (--temperature)"
    data = read_calibration(opts.checkpoint)
    if data is None:
        log.warning("%s has no %s: the bundle is not calibrated (T = 1)", opts.checkpoint, CALIBRATION_FILE)
        return 1.0, "none (the checkpoint has no calibration.json)"
    where = Path(opts.checkpoint) / CALIBRATION_FILE
    value = _number(data.get("temperature"), where, "temperature")
    if not value > 0:
        raise ModelExportError(f"{where}: temperature {value} is not a positive finite number.")
    return value, str(data.get("fit_on", where))


def _number(value: Any, where: Path, name: str) -> float:
    """A finite number from a calibration file, or a clear error naming the file and the key."""
    try:
        number = float(value)
    except (ValueError, TypeError) as exc:
        raise ModelExportError(f"{where}: {name} is not a number ({exc}). Re-run training.") from exc
    if not math.isfinite(number):
        raise ModelExportError(f"{where}: {name} {number} is not finite. Re-run training.")
    return number


def read_calibration(checkpoint: str | Path) -> dict[str, Any] | None:
    """The checkpoint's calibration.json (written by train), None where there is none."""
    path = Path(checkpoint) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelExportError(f"{path}: not a calibration file ({exc}). Re-run training.") from exc
    if not isinstance(data, dict):
        raise ModelExportError(f"{path}: not a calibration file (not a JSON object). Re-run training.")
    return data


def checkpoint_lexical(opts: ExportOptions) -> ExportOptions:
    """``opts`` with the checkpoint's lexical head (lexical.npz + calibration.json's ``lexical``, both
    written by train) where the options name neither a head nor a temperature."""
    if opts.lexical is not None or opts.temperature is not None:
        return opts
    data = read_calibration(opts.checkpoint)
    path = Path(opts.checkpoint) / LEXICAL_FILE
    lexical = data.get("lexical") if data else None
    if not isinstance(lexical, dict) or not path.is_file():
        return opts
    try:
        head = LexicalHead.load(path)
    except ValueError as exc:
        raise ModelExportError(f"{path}: {exc}. Re-run training.") from exc
    where = Path(opts.checkpoint) / CALIBRATION_FILE
    # The head was fit together with its own temperature (calibration.json's lexical.temperature).
    temperature = _number(lexical.get("temperature"), where, "lexical.temperature")
    if not temperature > 0:
        raise ModelExportError(
            f"{where}: lexical.temperature {temperature} is not positive. Re-run training."
        )
    return replace(
        opts,
        lexical=head,
        lexical_weight=_number(lexical.get("weight"), where, "lexical.weight"),
        temperature=temperature,
        temperature_fit_on=str(lexical.get("fit_on", where)),
        lexical_about={k: v for k, v in lexical.items() if k not in ("weight", "temperature")},
    )


def lexical_section(opts: ExportOptions) -> dict[str, Any]:
    """The manifest's ``calibration.lexical`` (empty without a head); refuses a bad weight."""
    if opts.lexical is None:
        return {}
    if not (math.isfinite(opts.lexical_weight) and opts.lexical_weight >= 0):
        raise ModelExportError(
            f"the lexical weight must be a non-negative finite number, got {opts.lexical_weight}."
        )
    return {
        "lexical": {
            "weight": round(float(opts.lexical_weight), 6),
            "buckets": opts.lexical.buckets,
            "fused": "softmax((graph logits + weight * lexical logits) / temperature)",
            **opts.lexical_about,
        }
    }


def score_named(model: Any, classifier: EmotionClassifier, examples: list[Example]) -> dict[str, Any]:
    """Accuracy of PyTorch fp32 and ONNX INT8 on a labelled set, with the INT8 confusion matrix."""
    encoded = classifier.tokenize([e.text for e in examples])
    lengths = encoded["attention_mask"].sum(1)
    gold = np.array([LABELS.index(e.label) for e in examples])
    int8 = probs_ort(classifier.session, encoded, lengths)
    figures = classification_metrics(gold, int8.argmax(1))
    out = {
        "n": len(examples),
        "accuracy_pytorch_fp32": accuracy(probs_torch(model, encoded, lengths), gold),
        "accuracy_onnx_int8": figures["accuracy"],
        "macro_f1_onnx_int8": figures["macro_f1"],
        "confusion_matrix_onnx_int8": figures["confusion_matrix"],
    }
    if classifier.lexical is not None:
        # What the bundle answers: the graph fused with its lexical head (the keys above: graph alone).
        served = classification_metrics(gold, int8_logits(classifier, examples).argmax(1))
        out |= {
            "accuracy_served": served["accuracy"],
            "macro_f1_served": served["macro_f1"],
            "confusion_matrix_served": served["confusion_matrix"],
        }
    return out


def validate(
    checkpoint: str, fp32: Path, staged: Path, examples: list[Example], opts: ExportOptions
) -> dict[str, Any]:
    """PyTorch fp32 vs ONNX fp32 vs ONNX INT8 (the staged bundle, through moodtune's own classifier)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(opts.threads)
    classifier = EmotionClassifier.from_bundle(staged, threads=opts.threads)
    texts = [e.text for e in examples]
    encoded = classifier.tokenize(texts)
    lengths = encoded["attention_mask"].sum(1)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    fp32_session = ort_session(fp32, opts.threads)

    probs = {
        "pytorch_fp32": probs_torch(model, encoded, lengths),
        "onnx_fp32": probs_ort(fp32_session, encoded, lengths),
        "onnx_int8": probs_ort(classifier.session, encoded, lengths),
    }
    metrics: dict[str, Any] = {
        "n_texts": len(texts),
        "parity": {
            "onnx_fp32_vs_pytorch": parity(probs["pytorch_fp32"], probs["onnx_fp32"]),
            "onnx_int8_vs_pytorch": parity(probs["pytorch_fp32"], probs["onnx_int8"]),
            "onnx_int8_vs_onnx_fp32": parity(probs["onnx_fp32"], probs["onnx_int8"]),
        },
    }
    if all(e.label for e in examples):
        gold = np.array([LABELS.index(e.label) for e in examples])
        metrics["accuracy"] = {name: accuracy(p, gold) for name, p in probs.items()}
        metrics["macro_f1"] = {name: macro_f1(p, gold) for name, p in probs.items()}

    for name, labelled in opts.named_evals.items():
        metrics.setdefault("named_evals", {})[name] = score_named(model, classifier, labelled)

    # Calibration and mixed feelings, from the INT8 graph's logits at T = 1 and at the bundle's T.
    sets = {"eval": examples, **opts.named_evals} if all(e.label for e in examples) else opts.named_evals
    for name, labelled in sets.items():
        logits = int8_logits(classifier, labelled)
        targets = np.array([e.target for e in labelled])
        metrics.setdefault("calibration", {})[name] = calibration_figures(
            logits, targets, classifier.temperature
        )
        soft = [i for i, e in enumerate(labelled) if e.soft is not None]
        if soft:
            metrics.setdefault("mixed", {})[name] = {
                "before": mixed_figures(softmax(logits[soft], 1.0), targets[soft]),
                "after": mixed_figures(softmax(logits[soft], classifier.temperature), targets[soft]),
            }

    single = [classifier.tokenize([t]) for t in texts[: opts.latency_texts]]
    fp32_names = {i.name for i in fp32_session.get_inputs()}

    def run_torch(item: dict[str, np.ndarray]) -> None:
        with torch.inference_mode():
            model(**{k: torch.from_numpy(v) for k, v in item.items() if k != LEXICAL_KEY})

    metrics["latency_ms"] = {
        "batch": 1,
        "threads": opts.threads,
        "pytorch_fp32": median_latency_ms(run_torch, single, opts.latency_repeats),
        "onnx_fp32": median_latency_ms(
            lambda item: fp32_session.run(None, {k: v for k, v in item.items() if k in fp32_names}),
            single,
            opts.latency_repeats,
        ),
        "onnx_int8": median_latency_ms(classifier.infer, single, opts.latency_repeats),
        # A text in, probabilities out: normalising, tokenizing, the lexical head (if any), the graph.
        "served_text": median_latency_ms(
            classifier.predict_one, texts[: opts.latency_texts], opts.latency_repeats
        ),
    }
    return metrics


# --- the whole export -------------------------------------------------------------------------------


def export_bundle(opts: ExportOptions) -> dict[str, Any]:
    """Export, quantize, validate and publish a bundle; return its manifest. Raises ModelExportError."""
    check_target(opts.out_dir, opts.checkpoint)
    config = check_checkpoint(opts.checkpoint)
    tokenizer, max_length = load_tokenizer(opts.checkpoint, opts.max_length)
    check_max_length(opts.checkpoint, config, max_length)
    if opts.eval_examples is not None:
        examples, eval_source = opts.eval_examples, opts.eval_name
    elif opts.eval_file is not None:
        examples, eval_source = load_datasets([opts.eval_file])[0], str(opts.eval_file)
    else:
        examples, eval_source = (
            [Example(t, "") for t in PARITY_TEXTS],
            "model_export.parity_texts (unlabelled)",
        )
        log.warning(
            "no --eval file: validating on %d built-in unlabelled sentences only, so there are no "
            "accuracy figures and the agreement gate is coarse (one disagreement gives %.3f). Pass --eval "
            "with a labelled held-out file (train writes test.tsv next to the checkpoint).",
            len(PARITY_TEXTS),
            1 - 1 / len(PARITY_TEXTS),
        )
    if not examples:
        raise ModelExportError(f"{eval_source}: no usable labelled texts to validate the export on.")

    opts = checkpoint_lexical(opts)
    temperature, fit_on = resolve_temperature(opts)
    staging = staging_dir(opts.out_dir)
    work = Path(tempfile.mkdtemp(prefix="moodtune-export-"))
    try:
        fp32 = export_fp32(opts.checkpoint, work / "fp32", opts.opset)
        int8 = quantize_int8(fp32, work / "int8.onnx", opts.weight_type, opts.per_channel, opts.reduce_range)
        served = save_ort_optimized(int8, work / "int8-optimized.onnx") if opts.save_optimized else int8
        sizes = {"onnx_fp32_bytes": fp32.stat().st_size, "onnx_int8_bytes": served.stat().st_size}
        bundle_dir = staging / "bundle"
        common = {
            "prefix": opts.prefix,
            "lexical": opts.lexical,
            "max_length": max_length,
            "inputs": [i.name for i in ort_session(served, 1).get_inputs()],
            "source": {
                "checkpoint": str(opts.checkpoint),
                "architecture": (config.architectures or ["?"])[0],
                "config": {
                    k: getattr(config, k, None)
                    for k in (
                        "vocab_size",
                        "embedding_size",
                        "hidden_size",
                        "num_hidden_layers",
                        "num_attention_heads",
                        "intermediate_size",
                    )
                },
                **opts.source_extra,
            },
            "quantization": {
                "method": "onnxruntime.quantize_dynamic",
                "weight_type": opts.weight_type,
                "per_channel": opts.per_channel,
                "reduce_range": opts.reduce_range,
                "exported_on": cpu_info(),
            },
            "graph_optimization": {
                "saved": opts.save_optimized,
                "level": "ORT_ENABLE_EXTENDED" if opts.save_optimized else None,
                "onnxruntime": ort.__version__,
            },
            # How ingestion cuts lyrics for this model (moodtune.emotion.bundle.Bundle.lines_per_chunk),
            # and the temperature the runtime divides logits by (moodtune.emotion.bundle.Bundle).
            "extra": {
                "lyrics": {"lines_per_chunk": opts.lines_per_chunk},
                "calibration": {
                    "method": "temperature scaling (Guo et al. 2017), fit by NLL",
                    "temperature": temperature,
                    "fit_on": fit_on,
                    **lexical_section(opts),
                },
            },
        }
        stage_bundle(bundle_dir, served, tokenizer, **common)
        metrics = validate(opts.checkpoint, fp32, bundle_dir, examples, opts)
        metrics.update(eval_file=eval_source, sizes=sizes, **opts.extra_metrics)
        agreement = metrics["parity"]["onnx_int8_vs_pytorch"]["top1_agreement"]
        if agreement < opts.min_agreement:
            raise ModelExportError(
                f"refused: INT8 top-1 agreement with PyTorch fp32 is {agreement:.4f} on {len(examples)} "
                f"texts from {eval_source}, below --min-agreement {opts.min_agreement}. No bundle was "
                f"written to {opts.out_dir}. Try a better-trained model or a lower threshold."
            )
        shutil.rmtree(bundle_dir)
        manifest = stage_bundle(
            bundle_dir, served, tokenizer, metrics=metrics, example_texts=list(opts.example_texts), **common
        )
        publish(bundle_dir, opts.out_dir)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def add_lines_per_chunk_argument(p: argparse.ArgumentParser, default: int) -> None:
    """``--lines-per-chunk``: the bundle's ``lyrics.lines_per_chunk`` (moodtune.emotion.bundle)."""
    p.add_argument(
        "--lines-per-chunk",
        type=int,
        default=default,
        choices=range(1, 65),
        metavar="N",
        help=f"lyric lines per chunk that ingestion scores songs in with this model (default {default})",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_export.export", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="fine-tuned checkpoint directory (or hub name)")
    p.add_argument("--out", required=True, type=Path, help="bundle directory to write (replaced atomically)")
    p.add_argument("--prefix", default="moodtune", help="model_version prefix (default: moodtune)")
    p.add_argument(
        "--eval", type=Path, help="labelled file (any model_export.datasets format) for parity and accuracy"
    )
    p.add_argument("--min-agreement", type=float, default=DEFAULT_MIN_AGREEMENT)
    p.add_argument(
        "--temperature",
        type=float,
        help="calibration temperature to ship (default: the checkpoint's calibration.json, else 1)",
    )
    p.add_argument(
        "--max-length", type=int, help="token limit (default: the checkpoint tokenizer's, else 128)"
    )
    p.add_argument("--weight-type", choices=["QInt8", "QUInt8"], default="QInt8")
    p.add_argument(
        "--per-tensor", action="store_true", help="per-tensor instead of per-channel weight scales"
    )
    p.add_argument(
        "--no-reduce-range",
        action="store_true",
        help="8-bit instead of 7-bit weights: results then differ between AVX2 and VNNI CPUs",
    )
    p.add_argument("--no-save-optimized", action="store_true", help="ship the raw INT8 graph")
    add_lines_per_chunk_argument(p, DEFAULT_LINES_PER_CHUNK)
    p.add_argument("--opset", type=int)
    p.add_argument("--threads", type=int, default=1, help="threads for the latency figures (default 1)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    manifest = export_bundle(
        ExportOptions(
            checkpoint=args.checkpoint,
            out_dir=args.out,
            prefix=args.prefix,
            eval_file=args.eval,
            min_agreement=args.min_agreement,
            max_length=args.max_length,
            weight_type=args.weight_type,
            per_channel=not args.per_tensor,
            reduce_range=not args.no_reduce_range,
            lines_per_chunk=args.lines_per_chunk,
            save_optimized=not args.no_save_optimized,
            opset=args.opset,
            threads=args.threads,
            temperature=args.temperature,
        )
    )
    m = manifest["metrics"]
    print(f"wrote {args.out} ({manifest['model_version']})")
    print(f"parity: {m['parity']}")
    if "accuracy" in m:
        print(f"accuracy: {m['accuracy']}")
    print(f"latency_ms (batch 1): {m['latency_ms']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
