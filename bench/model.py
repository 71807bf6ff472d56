"""Model benchmark: PyTorch eager fp32 vs ONNX fp32 vs ONNX INT8 for the KoELECTRA-Small shape.

    python -m bench.model [--quick] [--threads 1,2]

Random weights (the shape is what costs time, not the values): vocab 35000, embedding 128, hidden 256,
12 layers, 4 heads, intermediate 1024. The INT8 model is the bundle ``model_export.shapes`` builds
through the real export code (QInt8 per-channel weights, onnxruntime-optimised graph saved). Reported:

- latency, median of repeated runs, at batch 1 × 16/32/64/128 tokens and batch 32 × 64 tokens, with
  1 and 2 intra-op threads; the ratio is PyTorch's median over the row's median, same run;
- file sizes; session creation time (INT8 as shipped, i.e. pre-optimised and loaded with optimisation
  off, vs the raw quantized graph optimised at load);
- peak RSS and wall time of a fresh process that loads a bundle and classifies one text;
- INT8 with 7-bit weights (``reduce_range``, the export's default: the same integers on every x86
  CPU) against 8-bit weights: latency, and, given a trained checkpoint (``--decisive DIR``, e.g.
  ``python -m model_export.demo --keep-checkpoint DIR``), top-1 agreement and probability differences
  against PyTorch fp32 (random weights have no decisive outputs to agree on).

No GPU is used; ``python -m bench.finetune`` times fine-tuning.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import CACHE, ROOT

SHAPE = "koelectra-small"
SEED = 0
CASES = [(1, 16), (1, 32), (1, 64), (1, 128), (32, 64)]

# A fresh process: import the runtime, load the bundle, classify one text; report wall time and peak RSS.
# Peak RSS is VmHWM of the child's own address space (ru_maxrss would carry the parent's peak across exec).
_FRESH = """
import json, sys, time
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
start = time.perf_counter()
sys.path.insert(0, {shared!r})
from moodtune.emotion.classifier import EmotionClassifier
loaded = time.perf_counter()
clf = EmotionClassifier.from_bundle({bundle!r}, threads=1)
created = time.perf_counter()
clf.predict_one("오늘 하루 정말 행복했어 ㅎㅎ")
done = time.perf_counter()
print(json.dumps({{"import_s": loaded - start, "load_s": created - loaded, "first_predict_s": done - created,
    "total_s": done - start, "peak_rss_mb": hwm()}}))
"""

_FRESH_TORCH = """
import json, sys, time
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
start = time.perf_counter()
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
loaded = time.perf_counter()
tok = AutoTokenizer.from_pretrained({checkpoint!r})
model = AutoModelForSequenceClassification.from_pretrained({checkpoint!r}).eval()
created = time.perf_counter()
with torch.inference_mode():
    model(**tok(["오늘 하루 정말 행복했어 ㅎㅎ"], return_tensors="pt")).logits.softmax(-1)
done = time.perf_counter()
print(json.dumps({{"import_s": loaded - start, "load_s": created - loaded, "first_predict_s": done - created,
    "total_s": done - start, "peak_rss_mb": hwm()}}))
"""


def prepare() -> dict[str, Path]:
    """Random-weight checkpoint, fp32 ONNX, raw INT8 ONNX and the INT8 bundle, cached under .cache/bench."""
    from model_export.export import export_fp32, quantize_int8, save_ort_optimized
    from model_export.shapes import build_random_bundle, random_checkpoint

    paths = {
        "checkpoint": CACHE / f"{SHAPE}-checkpoint",
        "fp32": CACHE / f"{SHAPE}-fp32" / "model.onnx",
        "int8_raw": CACHE / f"{SHAPE}-int8-raw-7bit.onnx",  # as the bundle, before graph optimisation
        "int8_8bit": CACHE / f"{SHAPE}-int8-8bit-optimized.onnx",  # --no-reduce-range, as shipped
        "bundle": CACHE / SHAPE,
    }
    if not (paths["checkpoint"] / "config.json").is_file():
        random_checkpoint(paths["checkpoint"], SHAPE, SEED)
    if not paths["fp32"].is_file():
        export_fp32(str(paths["checkpoint"]), paths["fp32"].parent, None)
    if not paths["int8_raw"].is_file():
        quantize_int8(paths["fp32"], paths["int8_raw"], "QInt8", per_channel=True, reduce_range=True)
    if not paths["int8_8bit"].is_file():
        raw = quantize_int8(
            paths["fp32"], CACHE / "int8-8bit-raw.onnx", "QInt8", per_channel=True, reduce_range=False
        )
        save_ort_optimized(raw, paths["int8_8bit"])
        raw.unlink()
    # Same seed: the same weights as the checkpoint; 7-bit weights as the export's default.
    build_random_bundle(paths["bundle"], SHAPE, SEED, reduce_range=True)
    return paths


def inputs(batch: int, tokens: int, vocab: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    ids = rng.integers(5, vocab, size=(batch, tokens), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def latency_table(paths: dict[str, Path], threads_list: list[int], quick: bool) -> list[dict[str, Any]]:
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForSequenceClassification

    from moodtune.emotion.classifier import EmotionClassifier

    model = AutoModelForSequenceClassification.from_pretrained(paths["checkpoint"]).eval()
    vocab = model.config.vocab_size
    rows = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        fp32 = ort.InferenceSession(str(paths["fp32"]), options, providers=["CPUExecutionProvider"])
        int8 = EmotionClassifier.from_bundle(paths["bundle"], threads=threads).session  # as served
        rng = np.random.default_rng(0)
        for batch, tokens in CASES:
            feed = inputs(batch, tokens, vocab, rng)
            tensors = {k: torch.from_numpy(v) for k, v in feed.items()}
            repeats = (5 if batch > 1 else 15) if quick else (15 if batch > 1 else 60)

            def run_torch(tensors=tensors):
                with torch.inference_mode():
                    model(**tensors)

            torch_ms = median_ms(run_torch, repeats)
            fp32_ms = median_ms(lambda feed=feed, s=fp32: s.run(None, feed), repeats)
            int8_ms = median_ms(lambda feed=feed, s=int8: s.run(None, feed), repeats)
            rows.append(
                {
                    "threads": threads,
                    "batch": batch,
                    "tokens": tokens,
                    "pytorch_ms": torch_ms,
                    "onnx_fp32_ms": fp32_ms,
                    "onnx_int8_ms": int8_ms,
                }
            )
    return rows


def session_creation(paths: dict[str, Path], repeats: int) -> dict[str, float]:
    """Median session creation time (1 thread) of fp32, raw INT8 (optimised at load) and INT8 as shipped,
    and the two INT8 variants' latency at 1 × 64 tokens (saving the optimised graph must not cost speed)."""
    import onnxruntime as ort

    from moodtune.emotion.classifier import session_options

    def create(path: Path, pre_optimized: bool) -> ort.InferenceSession:
        return ort.InferenceSession(
            str(path), session_options(1, pre_optimized), providers=["CPUExecutionProvider"]
        )

    bundle_model = paths["bundle"] / "model.onnx"
    feed = inputs(1, 64, 35000, np.random.default_rng(1))
    raw, shipped = create(paths["int8_raw"], False), create(bundle_model, True)
    return {
        "onnx_fp32": median_ms(lambda: create(paths["fp32"], False), repeats, 1),
        "onnx_int8_raw": median_ms(lambda: create(paths["int8_raw"], False), repeats, 1),
        "onnx_int8_shipped": median_ms(lambda: create(bundle_model, True), repeats, 1),
        "onnx_int8_raw_1x64_ms": median_ms(lambda: raw.run(None, feed), 40),
        "onnx_int8_shipped_1x64_ms": median_ms(lambda: shipped.run(None, feed), 40),
    }


def reduce_range_latency(
    paths: dict[str, Path], threads_list: list[int], quick: bool
) -> list[dict[str, Any]]:
    """Median latency of the shipped INT8 graph with 7-bit (reduce_range) and with 8-bit weights."""
    import onnxruntime as ort

    from moodtune.emotion.classifier import session_options

    rows = []
    models = {"7bit": paths["bundle"] / "model.onnx", "8bit": paths["int8_8bit"]}
    for threads in threads_list:
        sessions = {
            name: ort.InferenceSession(
                str(path), session_options(threads, True), providers=["CPUExecutionProvider"]
            )
            for name, path in models.items()
        }
        rng = np.random.default_rng(2)
        for batch, tokens in [(1, 16), (1, 64), (32, 64)]:
            feed = inputs(batch, tokens, 35000, rng)
            repeats = (5 if batch > 1 else 15) if quick else (15 if batch > 1 else 60)
            row: dict[str, Any] = {"threads": threads, "batch": batch, "tokens": tokens}
            for name, session in sessions.items():
                row[f"int8_{name}_ms"] = median_ms(lambda feed=feed, s=session: s.run(None, feed), repeats)
            rows.append(row)
    return rows


def reduce_range_agreement(checkpoint: Path) -> dict[str, Any]:
    """Export a trained checkpoint with 7-bit and with 8-bit weights (the real export, validated on the
    checkpoint's test.tsv when it has one) and collect each one's parity and accuracy figures."""
    from model_export.export import ExportOptions, export_bundle

    eval_file = checkpoint / "test.tsv"
    out: dict[str, Any] = {"checkpoint": str(checkpoint)}
    for name, reduce_range in (("7bit", True), ("8bit", False)):
        manifest = export_bundle(
            ExportOptions(
                checkpoint=str(checkpoint),
                out_dir=CACHE / f"decisive-{name}",
                prefix=f"bench-{name}",
                eval_file=eval_file if eval_file.is_file() else None,
                min_agreement=0.0,  # measured here, not gated
                reduce_range=reduce_range,
            )
        )
        m = manifest["metrics"]
        out[name] = {
            "n_texts": m["n_texts"],
            **m["parity"]["onnx_int8_vs_pytorch"],
            "accuracy_onnx_int8": m.get("accuracy", {}).get("onnx_int8"),
            "accuracy_pytorch_fp32": m.get("accuracy", {}).get("pytorch_fp32"),
        }
    return out


def fresh_process(code: str) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sizes(paths: dict[str, Path]) -> dict[str, int]:
    weights = next(paths["checkpoint"].glob("*.safetensors"), None) or next(paths["checkpoint"].glob("*.bin"))
    return {
        "pytorch_checkpoint": weights.stat().st_size,
        "onnx_fp32": paths["fp32"].stat().st_size,
        "onnx_int8": (paths["bundle"] / "model.onnx").stat().st_size,
        "tokenizer_json": (paths["bundle"] / "tokenizer.json").stat().st_size,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()}-core {platform.machine()} ({cpu}), Python {platform.python_version()}"


def render_reduce_range(latency: list[dict[str, Any]], agreement: dict[str, Any] | None) -> list[str]:
    out = [
        "",
        "INT8 weights: 7-bit (`reduce_range`, the export's default: the same integer results on AVX2, "
        "AVX-512 and VNNI CPUs) vs 8-bit (`--no-reduce-range`); graphs as shipped; ratio = 8-bit / 7-bit",
        "",
        "| threads | batch × tokens | INT8 7-bit ms | INT8 8-bit ms (×) |",
        "|---|---|---|---|",
    ]
    for r in latency:
        seven, eight = r["int8_7bit_ms"], r["int8_8bit_ms"]
        case = f"{r['batch']} × {r['tokens']}"
        out.append(f"| {r['threads']} | {case} | {seven:.2f} | {eight:.2f} ({eight / seven:.2f}×) |")
    out.append("")
    if agreement is None:
        out.append(
            "Agreement with fp32: not measured (random weights are not decisive); pass `--decisive DIR`, "
            "a trained checkpoint such as `python -m model_export.demo --keep-checkpoint DIR` writes."
        )
        return out
    n = agreement["7bit"]["n_texts"]
    out += [
        f"INT8 vs PyTorch fp32 on {n} held-out texts, trained checkpoint `{agreement['checkpoint']}`:",
        "",
        "| INT8 weights | top-1 agreement | mean abs Δp | max abs Δp | INT8 accuracy (fp32) |",
        "|---|---|---|---|---|",
    ]
    for name in ("7bit", "8bit"):
        a = agreement[name]
        accuracy = (
            "n/a"
            if a["accuracy_onnx_int8"] is None
            else f"{a['accuracy_onnx_int8']:.3f} ({a['accuracy_pytorch_fp32']:.3f})"
        )
        out.append(
            f"| {name.replace('bit', '-bit')} | {a['top1_agreement']:.3f} | {a['mean_abs_diff']:.5f} "
            f"| {a['max_abs_diff']:.4f} | {accuracy} |"
        )
    return out


def render(rows, creation, size, fresh) -> str:
    import onnxruntime as ort
    import torch

    out = [
        f"### Model: KoELECTRA-Small shape, random weights — {machine()}",
        f"torch {torch.__version__}, onnxruntime {ort.__version__}; medians; "
        "ratio = PyTorch median / row median",
        "",
        "| threads | batch × tokens | PyTorch fp32 ms | ONNX fp32 ms (×) | ONNX INT8 ms (×) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["pytorch_ms"]
        out.append(
            f"| {r['threads']} | {r['batch']} × {r['tokens']} | {p:.2f} | {r['onnx_fp32_ms']:.2f} "
            f"({p / r['onnx_fp32_ms']:.1f}×) | {r['onnx_int8_ms']:.2f} ({p / r['onnx_int8_ms']:.1f}×) |"
        )
    mb = 1024 * 1024
    out += [
        "",
        "| file | MB |",
        "|---|---|",
        f"| PyTorch checkpoint (safetensors) | {size['pytorch_checkpoint'] / mb:.1f} |",
        f"| ONNX fp32 | {size['onnx_fp32'] / mb:.1f} |",
        f"| ONNX INT8 (bundle model.onnx) | {size['onnx_int8'] / mb:.1f} "
        f"({size['onnx_int8'] / size['onnx_fp32']:.0%} of fp32) |",
        f"| tokenizer.json | {size['tokenizer_json'] / mb:.2f} |",
        "",
        "| 1 thread | session creation ms | 1 × 64 tokens ms |",
        "|---|---|---|",
        f"| ONNX fp32 | {creation['onnx_fp32']:.0f} | |",
        f"| ONNX INT8, raw graph optimised at load | {creation['onnx_int8_raw']:.0f} "
        f"| {creation['onnx_int8_raw_1x64_ms']:.2f} |",
        f"| ONNX INT8 as shipped (optimised graph saved at export) | {creation['onnx_int8_shipped']:.0f} "
        f"| {creation['onnx_int8_shipped_1x64_ms']:.2f} |",
        "",
        "| fresh process: load + classify one text | imports s | load s | first predict ms | total s "
        "| peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in fresh.items():
        out.append(
            f"| {name} | {f['import_s']:.2f} | {f['load_s']:.2f} | {f['first_predict_s'] * 1000:.0f} | "
            f"{f['total_s']:.2f} | {f['peak_rss_mb']:.0f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.model", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--decisive",
        type=Path,
        metavar="DIR",
        help="trained checkpoint for the 7-bit vs 8-bit agreement figures (its test.tsv is the eval set)",
    )
    args = parser.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]

    print("preparing the KoELECTRA-Small-shaped models (cached in .cache/bench) …", file=sys.stderr)
    paths = prepare()
    rows = latency_table(paths, threads, args.quick)
    creation = session_creation(paths, 5 if args.quick else 11)
    shared = str(ROOT / "layers" / "shared")
    bundles = {
        "INT8 bundle (KoELECTRA-Small shape)": paths["bundle"],
        "demo bundle (models/demo)": ROOT / "models/demo",
    }
    fresh = {name: fresh_process(_FRESH.format(shared=shared, bundle=str(b))) for name, b in bundles.items()}
    fresh["PyTorch + transformers (same checkpoint)"] = fresh_process(
        _FRESH_TORCH.format(checkpoint=str(paths["checkpoint"]))
    )
    size = sizes(paths)
    rr_latency = reduce_range_latency(paths, threads, args.quick)
    rr_agreement = reduce_range_agreement(args.decisive) if args.decisive else None
    print(render(rows, creation, size, fresh))
    print("\n".join(render_reduce_range(rr_latency, rr_agreement)))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "latency": rows,
                    "creation_ms": creation,
                    "sizes": size,
                    "fresh": fresh,
                    "reduce_range": {"latency": rr_latency, "agreement": rr_agreement},
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
