"""The demo model: a WordPiece tokenizer and a small ELECTRA trained from scratch on the demo corpus,
exported through the same code as a fine-tuned KoELECTRA, written to ``models/demo/``.

    python -m model_export.demo            # make demo-model

Fixed seeds and one torch thread make the run repeatable on one machine type with the same torch
build: there it writes the same model.onnx and tokenizer.json every time. Across CPU types the
training floats differ (torch picks other kernels, which round differently), so a run elsewhere
trains a slightly different model (an AVX2 and an AVX-512 host gave test accuracies 0.736 and 0.752,
with identical tokenizer.json files).
The committed bundle is what the command produced on the CPU its manifest names
(``quantization.exported_on``).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from model_export.datasets import Example, format_label, read_plain, soft_example, stratified_split
from model_export.errors import ModelExportError, run_cli, setup_logging
from model_export.export import ExportOptions, add_lines_per_chunk_argument, export_bundle
from model_export.lexical import LexicalConfig, export_fields, fuse, train_lexical
from model_export.metrics import classification_metrics, top_confusions
from model_export.tokenizer import train_wordpiece
from model_export.train import (
    ID2LABEL,
    LABEL2ID,
    TrainConfig,
    calibrate,
    encode,
    example_logits,
    fit,
    predict_logits,
    save_checkpoint,
    set_seed,
)
from moodtune.labels import LABELS, NUM_LABELS

log = logging.getLogger("model_export.demo")

CORPUS = Path("data/demo/emotions.tsv")
MIXED = Path("data/demo/mixed.tsv")  # texts with two feelings and their proportions (soft labels)
REFERENCE = Path("data/demo/reference.tsv")
REFERENCE_MIXED = Path("data/demo/reference_mixed.tsv")
OUT = Path("models/demo")
# Lyric lines per chunk the demo bundle asks ingestion for. The demo model learned from chat lines
# (22 characters on average); 4-line chunks are three times longer and read worse. Songs whose
# scored dominant emotion is the one their writer meant (data/demo/song_intent.tsv, 300 songs):
# 1 line 176, 2 lines 183, 4 lines 145 (`python -m model_export.demo_report` prints these).
LINES_PER_CHUNK = 2
# Each mixed (soft-labelled) training text is seen this many times an epoch. With 717 of them (12 %
# of the corpus) three times was best; with 1,277 (20 %) once is: three times made soft examples
# half of what the model saw and lost single-feeling accuracy (docs/model.md, "Mixed feelings").
MIXED_REPEAT = 1
# Two-feeling texts joined from single-feeling training texts (``mixed_pairs``).
PAIRS = 2000


@dataclass(frozen=True)
class DemoShape:
    """The demo ELECTRA's size, chosen by validation macro-F1 among 2-6 layers × hidden 128-256 (see
    docs/model.md); about 3.0M parameters, a 3 MB INT8 model."""

    vocab_size: int = 6000
    embedding_size: int = 128
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 128


def build_model(shape: DemoShape, vocab_size: int, seed: int, dropout: float | None = None):
    """A randomly initialised ElectraForSequenceClassification with our labels."""
    from transformers import ElectraConfig, ElectraForSequenceClassification

    torch.manual_seed(seed)
    config = ElectraConfig(
        vocab_size=vocab_size,
        embedding_size=shape.embedding_size,
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        intermediate_size=shape.intermediate_size,
        max_position_embeddings=shape.max_position_embeddings,
        num_labels=NUM_LABELS,
        id2label=dict(ID2LABEL),
        label2id=dict(LABEL2ID),
        **(
            {}
            if dropout is None
            else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
        ),
    )
    return ElectraForSequenceClassification(config)


def fast_tokenizer(tokenizer):
    """Wrap a ``tokenizers.Tokenizer`` as the transformers fast tokenizer ELECTRA checkpoints use."""
    from transformers import ElectraTokenizerFast

    # do_lower_case/strip_accents False: otherwise transformers swaps in a normalizer that lowercases
    # and strips accents (NFD), which decomposes Hangul syllables.
    return ElectraTokenizerFast(tokenizer_object=tokenizer, do_lower_case=False, strip_accents=False)


def concatenated(
    train: Sequence[Example], n: int, seed: int, sizes: Sequence[int] = (2, 3, 4)
) -> list[Example]:
    """``n`` extra training texts, each 2-4 texts of one label joined by a space, labels in turn.

    The catalog is classified in 4-line chunks, several times longer than a chat line (the corpus
    averages 22 characters); a model that has only seen chat lines reads such chunks poorly. Only
    training texts are joined, so validation and test stay untouched.
    """
    rng = random.Random(seed)
    by_label: dict[str, list[str]] = {}
    for example in train:
        by_label.setdefault(example.label, []).append(example.text)
    labels = sorted(by_label)
    out = []
    for i in range(n):
        texts = by_label[labels[i % len(labels)]]
        k = min(rng.choice(sizes), len(texts))
        out.append(Example(" ".join(rng.sample(texts, k)), labels[i % len(labels)]))
    return out


def mixed_pairs(train: Sequence[Example], n: int, seed: int) -> list[Example]:
    """``n`` extra training texts, each a text of one feeling joined to a text of another, with the
    target 0.5/0.5: two feelings written side by side must come out as two feelings (neutral, the
    absence of one, is not paired). Only training texts are joined, so validation and test stay
    untouched."""
    rng = random.Random(seed)
    by_label: dict[str, list[str]] = {}
    for example in train:
        if example.soft is None and example.label != "neutral":
            by_label.setdefault(example.label, []).append(example.text)
    labels = sorted(by_label)
    out = []
    for _ in range(n if len(labels) > 1 else 0):
        a, b = rng.sample(labels, 2)
        target = [0.5 if label in (a, b) else 0.0 for label in LABELS]
        out.append(soft_example(f"{rng.choice(by_label[a])} {rng.choice(by_label[b])}", target))
    return out


def run_demo(
    corpus: Path,
    out_dir: Path,
    reference: Path | None,
    shape: DemoShape,
    cfg: TrainConfig,
    keep_checkpoint: Path | None = None,
    concat: int = 0,
    lines_per_chunk: int = LINES_PER_CHUNK,
    mixed: Path | None = None,
    reference_mixed: Path | None = None,
    mixed_repeat: int = 1,
    pairs: int = 0,
    lexical: LexicalConfig | None = None,
) -> dict:
    """Train, evaluate, calibrate, export; return the published manifest. Texts are cut at
    ``cfg.max_length``. ``mixed``: soft-labelled texts added to the corpus (split with it);
    ``reference_mixed``: a held-out soft-labelled set measured in the manifest.
    ``keep_checkpoint``: also save the fp32 checkpoint and its test split (test.tsv) there.
    ``concat``: add that many joined training texts (``concatenated``).
    ``mixed_repeat``: how many times each soft-labelled training text is seen per epoch.
    ``pairs``: add that many two-feeling texts joined from training texts (``mixed_pairs``).
    ``lexical``: also train a lexical head on the training split and fuse it where validation NLL
    says it helps (``model_export.lexical``); None: the graph alone."""
    started = time.perf_counter()
    max_length = cfg.max_length
    # One thread: repeatable on one machine type with the same torch build (not across CPU types).
    torch.set_num_threads(1)
    set_seed(cfg.seed)
    examples = read_plain(corpus) + (read_plain(mixed) if mixed and mixed.is_file() else [])
    if len(examples) < 10 * NUM_LABELS:
        raise ModelExportError(f"{corpus}: only {len(examples)} usable rows; the demo needs at least 70.")
    train, val, test = stratified_split(examples, 0.1, 0.1, seed=cfg.seed)
    wordpiece = train_wordpiece([e.text for e in train], vocab_size=shape.vocab_size)
    tokenizer = fast_tokenizer(wordpiece)
    model = build_model(shape, wordpiece.get_vocab_size(), cfg.seed, cfg.dropout)
    joined = concatenated([e for e in train if e.soft is None], concat, cfg.seed)
    repeated = [e for e in train if e.soft is not None] * (mixed_repeat - 1)
    paired = mixed_pairs(train, pairs, cfg.seed)
    train_enc, val_enc, test_enc = (
        encode(tokenizer, part, max_length) for part in (train + joined + repeated + paired, val, test)
    )
    result = fit(model, tokenizer, train_enc, val_enc, cfg, desc="demo")
    test_metrics = classification_metrics(
        test_enc.labels, predict_logits(model, test_enc, 256, tokenizer.pad_token_id).argmax(1)
    )
    log.info("demo test (PyTorch): %s", {k: test_metrics[k] for k in ("accuracy", "macro_f1")})

    val_logits = example_logits(model, tokenizer, val, cfg)
    calibration = calibrate(model, tokenizer, val, cfg, val_logits)
    # A head that validation gives weight 0 comes back as None: the bundle is the network alone.
    head, fusion = (None, None) if lexical is None else fuse(train_lexical(train, lexical), val_logits, val)
    # The test split's single-feeling and mixed texts apart: accuracy and ECE mean something on the
    # first, the mixed figures on the second.
    named = {
        "test_single": [e for e in test if e.soft is None],
        "test_mixed": [e for e in test if e.soft is not None],
        **{
            name: read_plain(path)
            for name, path in (("reference", reference), ("reference_mixed", reference_mixed))
            if path and path.is_file()
        },
    }
    named = {name: examples for name, examples in named.items() if examples}
    work = Path(tempfile.mkdtemp(prefix="moodtune-demo-"))
    try:
        checkpoint = save_checkpoint(model, tokenizer, work / "checkpoint", max_length)
        if keep_checkpoint is not None:
            shutil.copytree(checkpoint, keep_checkpoint, dirs_exist_ok=True)
            (keep_checkpoint / "test.tsv").write_text(
                "label\ttext\n" + "".join(f"{format_label(e)}\t{e.text}\n" for e in test), encoding="utf-8"
            )
        manifest = export_bundle(
            ExportOptions(
                checkpoint=str(checkpoint),
                out_dir=out_dir,
                prefix="demo",
                lines_per_chunk=lines_per_chunk,
                eval_examples=test,
                eval_name=f"{corpus} test split (10%, stratified, seed {cfg.seed})",
                named_evals=named,
                temperature_fit_on=calibration["fit_on"],
                **export_fields(
                    calibration["temperature"],
                    head,
                    fusion,
                    len(val),
                    config=asdict(lexical) if lexical else None,
                ),
                source_extra={
                    "checkpoint": "trained from scratch by `python -m model_export.demo`",
                    "corpus": str(corpus),
                    "corpus_sha256": hashlib.sha256(corpus.read_bytes()).hexdigest(),
                    "mixed": str(mixed) if mixed and mixed.is_file() else None,
                    "mixed_sha256": (
                        hashlib.sha256(mixed.read_bytes()).hexdigest() if mixed and mixed.is_file() else None
                    ),
                    "shape": asdict(shape),
                },
                extra_metrics={
                    "training": {
                        "config": asdict(cfg),
                        "examples": {
                            "train": len(train),
                            "joined": len(joined),
                            "mixed_repeated": len(repeated),
                            "mixed_pairs": len(paired),
                            "val": len(val),
                            "test": len(test),
                        },
                        "best_epoch": result.best_epoch,
                        "history": [asdict(r) for r in result.history],
                        "samples_per_second": result.samples_per_second,
                    },
                    "test_pytorch": test_metrics,
                    "calibration_validation": calibration["validation"],
                },
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("demo model written in %.0f s", time.perf_counter() - started)
    return manifest


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_export.demo", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=CORPUS, help=f"label<TAB>text corpus (default {CORPUS})")
    p.add_argument(
        "--mixed", type=Path, default=MIXED, help=f"soft-labelled texts added to the corpus (default {MIXED})"
    )
    p.add_argument(
        "--reference", type=Path, default=REFERENCE, help="extra held-out set to report accuracy on"
    )
    p.add_argument(
        "--reference-mixed",
        type=Path,
        default=REFERENCE_MIXED,
        help="held-out soft-labelled set measured for mixed feelings",
    )
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=64)
    add_lines_per_chunk_argument(p, LINES_PER_CHUNK)
    p.add_argument(
        "--concat",
        type=int,
        default=0,
        metavar="N",
        help="add N training texts made of 2-4 joined ones (default 0; docs/model.md has the measurement)",
    )
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        help="label smoothing ε (default 0: it erases which feelings resemble each other; docs/model.md)",
    )
    p.add_argument(
        "--mixed-repeat",
        type=int,
        default=MIXED_REPEAT,
        metavar="N",
        help=f"each mixed training text seen N times an epoch (default {MIXED_REPEAT}; docs/model.md)",
    )
    p.add_argument(
        "--pairs",
        type=int,
        default=PAIRS,
        metavar="N",
        help=f"add N two-feeling texts joined from training texts (default {PAIRS}; docs/model.md)",
    )
    p.add_argument(
        "--lexical",
        action="store_true",
        help="also train a lexical head and fuse it where validation NLL says so (off by default: "
        "it sharpens the distributions; docs/model.md §2c has the measurement)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--keep-checkpoint",
        type=Path,
        metavar="DIR",
        help="also save the fp32 checkpoint and test.tsv there (e.g. for bench.model --decisive)",
    )
    return p


def demo_config(args: argparse.Namespace, progress: bool) -> TrainConfig:
    """The demo model's training settings from its command line (``build_parser``); chosen by
    validation macro-F1 in a sweep on the demo corpus (docs/model.md)."""
    return TrainConfig(
        epochs=args.epochs,
        lr=5e-4,
        batch_size=32,
        max_length=args.max_length,
        weight_decay=0.01,
        label_smoothing=args.label_smoothing,
        warmup_ratio=0.1,
        seed=args.seed,
        progress=progress,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    cfg = demo_config(args, progress=not args.no_progress)
    if args.pairs < 0:
        build_parser().error("--pairs must be at least 0")
    if args.mixed_repeat < 1:
        build_parser().error("--mixed-repeat must be at least 1")
    if args.concat < 0:
        build_parser().error("--concat must be at least 0")
    manifest = run_demo(
        args.corpus,
        args.out,
        args.reference,
        DemoShape(),
        cfg,
        args.keep_checkpoint,
        concat=args.concat,
        lines_per_chunk=args.lines_per_chunk,
        mixed=args.mixed,
        reference_mixed=args.reference_mixed,
        mixed_repeat=args.mixed_repeat,
        pairs=args.pairs,
        lexical=LexicalConfig(seed=args.seed) if args.lexical else None,
    )
    m = manifest["metrics"]
    print(f"wrote {args.out} ({manifest['model_version']})")
    print(f"test (INT8): {m.get('accuracy', {})}")
    print(f"parity: {m['parity']['onnx_int8_vs_pytorch']}")
    for name, figures in m.get("named_evals", {}).items():
        print(f"{name}: {figures}")
    print(f"temperature: {manifest['calibration']['temperature']}")
    if "lexical" in manifest["calibration"]:
        print(f"lexical head: weight {manifest['calibration']['lexical']['weight']}")
    for name, figures in m.get("calibration", {}).items():
        print(f"calibration {name}: {figures}")
    for name, figures in m.get("mixed", {}).items():
        print(f"mixed {name}: {figures}")
    print(
        "main confusions (PyTorch, test): " + ", ".join(top_confusions(m["test_pytorch"]["confusion_matrix"]))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
