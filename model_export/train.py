"""Fine-tune an ElectraForSequenceClassification-compatible checkpoint on the seven emotions.

    python -m model_export.train --checkpoint monologg/koelectra-small-v3-discriminator \\
        --data 단발성.xlsx 연속적.xlsx --balance 9000 --out artifacts/koelectra-emotion

Writes the checkpoint (with ``id2label`` in moodtune's label order and the tokenizer), ``metrics.json``
(accuracy, macro-F1, per-class F1, confusion matrix) and PNG plots. CUDA with bf16 autocast when present.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from model_export import learn
from model_export.calibration import CALIBRATION_FILE, calibration_figures, fit_temperature
from model_export.datasets import Example
from model_export.errors import ModelExportError, run_cli, setup_logging
from model_export.lexical import LexicalConfig, fuse, train_lexical
from model_export.metrics import classification_metrics, top_confusions
from moodtune.emotion.lexical import LEXICAL_FILE
from moodtune.labels import LABEL_INDEX, LABELS, NUM_LABELS, canonical_label

log = logging.getLogger("model_export.train")

ID2LABEL = dict(enumerate(LABELS))
LABEL2ID = {label: i for i, label in ID2LABEL.items()}


@dataclass
class TrainConfig:
    """Hyper-parameters; every field is a CLI flag (``progress`` is ``--no-progress``)."""

    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 32
    eval_batch_size: int = 128
    max_length: int = 128
    dropout: float | None = None  # None keeps the checkpoint's
    weight_decay: float = 0.01
    label_smoothing: float = 0.0
    class_weights: bool = False
    warmup_ratio: float = 0.1
    patience: int | None = None  # early stopping on validation macro-F1, in epochs
    grad_clip: float = 1.0
    seed: int = 42
    progress: bool = True


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_macro_f1: float
    seconds: float


@dataclass
class FitResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    samples_per_second: float = 0.0


# --- reproducibility and devices ---------------------------------------------------------------------


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch; deterministic kernels where torch has them."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --- data --------------------------------------------------------------------------------------------


@dataclass
class Encoded:
    ids: list[list[int]]
    labels: np.ndarray  # top label index per example (metrics, class weights)
    weights: np.ndarray
    targets: np.ndarray  # [n, 7] target distributions (one-hot for single-label examples)

    def __len__(self) -> int:
        return len(self.ids)


def encode(tokenizer: Any, examples: Sequence[Example], max_length: int) -> Encoded:
    """Tokenize once, truncated to ``max_length``; padding happens per batch."""
    if not examples:
        raise ModelExportError("no examples to encode (the split is empty); give more data.")
    ids = tokenizer([e.text for e in examples], truncation=True, max_length=max_length)["input_ids"]
    return Encoded(
        ids=ids,
        labels=np.array([LABEL_INDEX[e.label] for e in examples], dtype=np.int64),
        weights=np.array([e.weight for e in examples], dtype=np.float32),
        targets=np.array([e.target for e in examples], dtype=np.float32).reshape(-1, NUM_LABELS),
    )


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length: shuffle, sort within windows of 50 batches, shuffle the batches.
    Less padding than random batches, still random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(data: Encoded, index: Sequence[int], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest sequence."""
    width = max(len(data.ids[i]) for i in index)
    input_ids = torch.full((len(index), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(index), width), dtype=torch.long)
    for row, i in enumerate(index):
        seq = data.ids[i]
        input_ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "token_type_ids": torch.zeros_like(input_ids),
        "labels": torch.from_numpy(data.labels[list(index)]),
        "weights": torch.from_numpy(data.weights[list(index)]),
        "targets": torch.from_numpy(data.targets[list(index)]),
    }


def class_weight_vector(labels: np.ndarray) -> torch.Tensor:
    """Inverse-frequency class weights, normalised to mean 1 (absent classes get 0)."""
    counts = np.bincount(labels, minlength=NUM_LABELS).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (NUM_LABELS * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


# --- the loop ----------------------------------------------------------------------------------------


def _autocast(dev: torch.device):
    if dev.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.inference_mode()
def predict_logits(model: nn.Module, data: Encoded, batch_size: int, pad_id: int) -> np.ndarray:
    """Logits [n, 7] in the data's order (batches sorted by length internally)."""
    model.eval()
    dev = next(model.parameters()).device
    order = sorted(range(len(data)), key=lambda i: len(data.ids[i]))
    out = np.zeros((len(data), NUM_LABELS), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        batch = collate(data, index, pad_id)
        with _autocast(dev):
            logits = model(
                **{k: batch[k].to(dev) for k in ("input_ids", "attention_mask", "token_type_ids")}
            ).logits
        out[index] = logits.float().cpu().numpy()
    return out


def soft_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Per-example cross-entropy against target distributions: ``-Σ_c t_c log softmax(z)_c``.

    With one-hot targets it is the usual cross-entropy. ``label_smoothing`` ε mixes the target with
    the uniform distribution ((1 - ε) t + ε / K); ``class_weights`` w scale an example by ``t · w``
    (its label's weight when one-hot)."""
    if label_smoothing:
        targets = targets * (1 - label_smoothing) + label_smoothing / targets.shape[-1]
    per_example = -(targets * torch.log_softmax(logits.float(), dim=-1)).sum(-1)
    if class_weights is not None:
        per_example = per_example * (targets @ class_weights)
    return per_example


def _loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    class_weights: torch.Tensor | None,
    label_smoothing: float,
) -> torch.Tensor:
    per_example = soft_cross_entropy(logits, targets, class_weights, label_smoothing)
    return (per_example * weights).sum() / weights.sum().clamp_min(1e-8)


def fit(
    model: nn.Module, tokenizer: Any, train: Encoded, val: Encoded, cfg: TrainConfig, desc: str = "train"
) -> FitResult:
    """Train ``model`` in place; at the end it holds the weights of the best validation epoch (macro-F1)."""
    dev = device()
    model.to(dev)
    pad_id = tokenizer.pad_token_id or 0
    rng = random.Random(cfg.seed)
    lengths = [len(s) for s in train.ids]
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total_steps = max(1, steps_per_epoch * cfg.epochs)
    warmup = int(total_steps * cfg.warmup_ratio)

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": cfg.weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (
            (step + 1) / max(1, warmup)
            if step < warmup
            else max(0.0, (total_steps - step) / max(1, total_steps - warmup))
        ),
    )
    class_weights = class_weight_vector(train.labels).to(dev) if cfg.class_weights else None

    result = FitResult()
    best_f1, best_state, stale = -1.0, None, 0
    seen, train_seconds = 0, 0.0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        start = time.perf_counter()
        losses = []
        batches = length_grouped_batches(lengths, cfg.batch_size, rng)
        bar = tqdm(batches, desc=f"{desc} epoch {epoch}/{cfg.epochs}", disable=not cfg.progress, leave=False)
        for index in bar:
            batch = {k: v.to(dev) for k, v in collate(train, index, pad_id).items()}
            with _autocast(dev):
                logits = model(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    token_type_ids=batch["token_type_ids"],
                ).logits
            loss = _loss(logits, batch["targets"], batch["weights"], class_weights, cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            seen += len(index)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        train_seconds += time.perf_counter() - start

        logits = predict_logits(model, val, cfg.eval_batch_size, pad_id)
        with torch.no_grad():
            val_loss = float(
                _loss(
                    torch.from_numpy(logits),
                    torch.from_numpy(val.targets),
                    torch.from_numpy(val.weights),
                    None if class_weights is None else class_weights.cpu(),
                    cfg.label_smoothing,
                )
            )
        # Model selection on the single-label rows: a 0.5/0.5 row's "top label" is a coin toss.
        hard = val.targets.max(axis=1) >= 1.0
        hard = hard if hard.any() else np.ones(len(val), dtype=bool)
        metrics = classification_metrics(val.labels[hard], logits[hard].argmax(1))
        record = EpochRecord(
            epoch=epoch,
            train_loss=round(float(np.mean(losses)), 5),
            val_loss=round(val_loss, 5),
            val_accuracy=metrics["accuracy"],
            val_macro_f1=metrics["macro_f1"],
            seconds=round(time.perf_counter() - start, 2),
        )
        result.history.append(record)
        log.info("%s epoch %d: %s", desc, epoch, asdict(record))
        if metrics["macro_f1"] > best_f1:
            best_f1, best_state, stale = metrics["macro_f1"], copy.deepcopy(model.state_dict()), 0
            result.best_epoch = epoch
        else:
            stale += 1
            if cfg.patience is not None and stale >= cfg.patience:
                log.info("%s: early stop after epoch %d (best epoch %d)", desc, epoch, result.best_epoch)
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    result.samples_per_second = round(seen / max(train_seconds, 1e-9), 1)
    return result


# --- checkpoints -------------------------------------------------------------------------------------


def save_checkpoint(model: Any, tokenizer: Any, out_dir: Path, max_length: int) -> Path:
    """Save model + tokenizer with ``id2label`` in moodtune's order and the training max length."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.id2label = dict(ID2LABEL)
    model.config.label2id = dict(LABEL2ID)
    model.save_pretrained(out_dir)
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(out_dir)
    return out_dir


def load_model(checkpoint: str, cfg: TrainConfig) -> tuple[Any, Any]:
    """Model and tokenizer from a local directory or hub name, with a 7-label head in our order (see
    ``align_head``)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from model_export.checkpoints import check_max_length

    kwargs: dict[str, Any] = {
        "num_labels": NUM_LABELS,
        "id2label": dict(ID2LABEL),
        "label2id": dict(LABEL2ID),
    }
    if cfg.dropout is not None:
        kwargs |= {
            "hidden_dropout_prob": cfg.dropout,
            "attention_probs_dropout_prob": cfg.dropout,
            "classifier_dropout": cfg.dropout,
        }
    try:
        config = AutoConfig.from_pretrained(checkpoint)
        check_max_length(checkpoint, config, cfg.max_length, name="--max-length")
        tokenizer = AutoTokenizer.from_pretrained(checkpoint, use_fast=True)
        # A head of another size is replaced by a fresh one; one of the right size is kept and
        # align_head puts its rows in our label order (or replaces it).
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            checkpoint, ignore_mismatched_sizes=True, output_loading_info=True, **kwargs
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelExportError(
            f"{checkpoint}: cannot load a checkpoint and tokenizer there ({exc}). Give a directory with "
            "config.json, weights and tokenizer files, or a hub name such as "
            "monologg/koelectra-small-v3-discriminator (needs internet)."
        ) from exc
    their_labels = [str(config.id2label.get(i, f"LABEL_{i}")) for i in range(config.num_labels)]
    align_head(model, their_labels, loading, checkpoint)
    return model, tokenizer


def output_layer(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """The classifier's last linear layer with one output per label (ELECTRA: classifier.out_proj)."""
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == NUM_LABELS:
            found = (name, module)
    return found


def align_head(model: nn.Module, their_labels: list[str], loading: dict[str, Any], checkpoint: str) -> str:
    """Make the classification head's rows follow moodtune's label order; return what was done.

    ``ignore_mismatched_sizes`` only replaces a head of the wrong size: a 7-label head in another order
    would be loaded as is and read under our ``id2label``. So a loaded head is checked against the
    checkpoint's ``id2label``: in our order it is kept; a permutation of our labels (any known
    spelling, e.g. 기쁨/행복) has its rows reordered; other names (LABEL_0…, other classes) cannot be
    mapped and the output layer is re-initialised, with a warning.
    """
    found = output_layer(model)
    if found is None:
        raise ModelExportError(
            f"{checkpoint}: no {NUM_LABELS}-output linear layer in the classifier; moodtune needs an "
            "ElectraForSequenceClassification-compatible model."
        )
    name, layer = found
    fresh = {f"{name}.weight", f"{name}.bias"}
    replaced = set(loading.get("missing_keys", [])) | {m[0] for m in loading.get("mismatched_keys", [])}
    if fresh & replaced:
        if len(their_labels) != NUM_LABELS and loading.get("mismatched_keys"):
            log.warning(
                "%s: its head has %d labels; a new %d-label head is trained",
                checkpoint,
                len(their_labels),
                NUM_LABELS,
            )
        return "new"
    mapped = [canonical_label(label) for label in their_labels]
    if mapped == list(LABELS):
        return "kept"
    if sorted(m or "" for m in mapped) == sorted(LABELS):
        order = [mapped.index(label) for label in LABELS]
        with torch.no_grad():
            layer.weight.copy_(layer.weight[order].clone())
            layer.bias.copy_(layer.bias[order].clone())
        log.info("%s: head rows reordered from %s to moodtune's order", checkpoint, their_labels)
        return "permuted"
    log.warning(
        "%s: its %d labels %s do not map to moodtune's %s; the output layer %s is re-initialised and "
        "trained from scratch",
        checkpoint,
        NUM_LABELS,
        their_labels,
        list(LABELS),
        name,
    )
    model._init_weights(layer)
    return "reinitialised"


# --- plots -------------------------------------------------------------------------------------------


def plot_history(history: Sequence[EpochRecord], path: Path) -> Path:
    """Learning curves: train/validation loss and validation accuracy/macro-F1 per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r.epoch for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r.train_loss for r in history], "o-", label="train loss")
    left.plot(epochs, [r.val_loss for r in history], "o-", label="validation loss")
    left.set_xlabel("epoch")
    left.legend()
    right.plot(epochs, [r.val_accuracy for r in history], "o-", label="validation accuracy")
    right.plot(epochs, [r.val_macro_f1 for r in history], "o-", label="validation macro-F1")
    right.set_xlabel("epoch")
    right.set_ylim(0, 1)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusion(confusion: list[list[int]], path: Path, title: str) -> Path:
    """Confusion matrix heat map (rows gold, columns predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.array(confusion)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(NUM_LABELS), LABELS, rotation=45, ha="right")
    ax.set_yticks(range(NUM_LABELS), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    for (i, j), n in np.ndenumerate(matrix):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if n > matrix.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --- the command -------------------------------------------------------------------------------------


def example_logits(
    model: nn.Module, tokenizer: Any, examples: Sequence[Example], cfg: TrainConfig
) -> np.ndarray:
    """The model's logits [n, 7] for ``examples`` (texts cut at ``cfg.max_length``), in their order."""
    return predict_logits(
        model, encode(tokenizer, examples, cfg.max_length), cfg.eval_batch_size, tokenizer.pad_token_id or 0
    )


def calibrate(
    model: nn.Module,
    tokenizer: Any,
    val: Sequence[Example],
    cfg: TrainConfig,
    logits: np.ndarray | None = None,
) -> dict[str, Any]:
    """Fit the temperature on the validation split (model_export.calibration) and measure it there;
    ``logits``: the model's validation logits where the caller has them (``example_logits``)."""
    if logits is None:
        logits = example_logits(model, tokenizer, val, cfg)
    targets = np.array([e.target for e in val], dtype=np.float32).reshape(-1, NUM_LABELS)
    temperature = fit_temperature(logits, targets)
    log.info("calibration: temperature %.4f fit on %d validation texts", temperature, len(val))
    return {
        "temperature": temperature,
        "fit_on": f"validation split ({len(val)} texts, NLL)",
        "validation": calibration_figures(logits, targets, temperature),
    }


def write_calibration(checkpoint_dir: Path, calibration: dict[str, Any]) -> Path:
    """``calibration.json`` beside the checkpoint, which ``model_export.export`` ships in the bundle."""
    path = checkpoint_dir / CALIBRATION_FILE
    path.write_text(json.dumps(calibration, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def _train_one(checkpoint: str, train: list[Example], val: list[Example], cfg: TrainConfig, desc: str):
    set_seed(cfg.seed)
    model, tokenizer = load_model(checkpoint, cfg)
    train_enc, val_enc = encode(tokenizer, train, cfg.max_length), encode(tokenizer, val, cfg.max_length)
    result = fit(model, tokenizer, train_enc, val_enc, cfg, desc=desc)
    val_metrics = classification_metrics(
        val_enc.labels,
        predict_logits(model, val_enc, cfg.eval_batch_size, tokenizer.pad_token_id or 0).argmax(1),
    )
    return model, tokenizer, result, val_metrics


def folds_with_feedback(
    pool: list[Example], feedback: list[Example], k: int, seed: int
) -> list[tuple[list[Example], list[Example]]]:
    """Stratified K folds of the labelled ``pool``, with the weak-labelled feedback rows added to each
    fold's training part only: a fold is validated on real labels, as the final model is."""
    from model_export.datasets import stratified_folds

    folds = []
    for fold_train, fold_val in stratified_folds(pool, k, seed):
        held_out = {e.text for e in fold_val}
        folds.append((fold_train + [e for e in feedback if e.text not in held_out], fold_val))
    return folds


def run_training(args: argparse.Namespace, cfg: TrainConfig) -> dict[str, Any]:
    """The whole command: data, optional K folds, final model, checkpoint, metrics.json, plots."""
    from model_export.datasets import balance, format_label, load_datasets, stratified_split
    from model_export.feedback import load_feedback

    examples, report = load_datasets(args.data, args.format, args.strict_labels)
    log.info("%s", report.summary())
    messages: list[str] = []
    if args.balance:
        examples, messages = balance(examples, args.balance, cfg.seed)
        for message in messages:
            log.warning("balance: %s", message)
    train, val, test = stratified_split(examples, args.val_size, args.test_size, cfg.seed)

    feedback_summary = None
    added: list[Example] = []
    if args.feedback:
        held_out = {e.text for e in val + test}
        rules = replace(learn.LearnConfig(), max_weight=args.feedback_weight)
        rows, fb_report = load_feedback(args.feedback, args.feedback_catalog, args.feedback_bundle, rules)
        added = [e for e in rows if e.text not in held_out]
        fb_report.dropped["text in validation/test split"] += len(rows) - len(added)
        fb_report.dropped = +fb_report.dropped
        feedback_summary = {"added": len(added), "summary": fb_report.summary()}
        log.info("%s", fb_report.summary())

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {
        "checkpoint": args.checkpoint,
        "device": str(device()),
        "config": asdict(cfg),
        "data": {
            "files": [str(p) for p in args.data],
            "kept_per_label": dict(report.kept),
            "dropped": dict(report.dropped),
            "repaired": {f"{r}→{c}": n for (r, c), n in report.repaired.items()},
            "balance_messages": messages,
            "splits": {"train": len(train) + len(added), "val": len(val), "test": len(test)},
            "feedback": feedback_summary,
        },
    }

    if args.folds:
        fold_figures = []
        folds = folds_with_feedback(train + val, added, args.folds, cfg.seed)
        for k, (fold_train, fold_val) in enumerate(folds, start=1):
            *_, figures = _train_one(
                args.checkpoint, fold_train, fold_val, cfg, desc=f"fold {k}/{args.folds}"
            )
            fold_figures.append(figures)
            log.info("fold %d: accuracy %.4f macro-F1 %.4f", k, figures["accuracy"], figures["macro_f1"])
        summary = {
            key: {
                "mean": round(statistics.mean(f[key] for f in fold_figures), 4),
                "std": round(statistics.pstdev(f[key] for f in fold_figures), 4),
            }
            for key in ("accuracy", "macro_f1")
        }
        metrics["folds"] = {
            "k": args.folds,
            **summary,
            "per_fold": [{k: f[k] for k in summary} for f in fold_figures],
        }
        log.info(
            "%d-fold: accuracy %.4f ± %.4f, macro-F1 %.4f ± %.4f",
            args.folds,
            summary["accuracy"]["mean"],
            summary["accuracy"]["std"],
            summary["macro_f1"]["mean"],
            summary["macro_f1"]["std"],
        )

    started = time.perf_counter()
    model, tokenizer, result, val_metrics = _train_one(args.checkpoint, train + added, val, cfg, desc="final")
    pad_id = tokenizer.pad_token_id or 0
    test_enc = encode(tokenizer, test, cfg.max_length)
    test_logits = predict_logits(model, test_enc, cfg.eval_batch_size, pad_id)
    test_metrics = classification_metrics(test_enc.labels, test_logits.argmax(1))
    val_logits = example_logits(model, tokenizer, val, cfg)
    calibration = calibrate(model, tokenizer, val, cfg, val_logits)
    calibration["test"] = calibration_figures(test_logits, test_enc.targets, calibration["temperature"])
    head = None
    if args.lexical:
        head, fusion = fuse(train_lexical(train, LexicalConfig(seed=cfg.seed)), val_logits, val)
        calibration["lexical"] = {
            "weight": fusion.weight,
            "temperature": fusion.temperature,
            **fusion.about(len(val)),
        }
    metrics["final"] = {
        "train_seconds": round(time.perf_counter() - started, 1),
        "samples_per_second": result.samples_per_second,
        "best_epoch": result.best_epoch,
        "history": [asdict(r) for r in result.history],
        "val": val_metrics,
        "test": test_metrics,
        "top_confusions": top_confusions(test_metrics["confusion_matrix"]),
    }
    metrics["calibration"] = calibration
    save_checkpoint(model, tokenizer, out, cfg.max_length)
    (out / LEXICAL_FILE).unlink(missing_ok=True)
    if head is not None:
        head.save(out / LEXICAL_FILE)  # model_export.export ships it with calibration["lexical"]
    write_calibration(out, calibration)
    plot_history(result.history, out / "learning_curves.png")
    plot_confusion(test_metrics["confusion_matrix"], out / "confusion_matrix.png", "test split")
    (out / "metrics.json").write_text(
        json.dumps(metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    # Keep the held-out split next to the checkpoint so `model_export.export --eval` can use it.
    with (out / "test.tsv").open("w", encoding="utf-8") as f:
        f.write("label\ttext\n" + "".join(f"{format_label(e)}\t{e.text}\n" for e in test))
    return metrics


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m model_export.train", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="ELECTRA checkpoint directory or hub name")
    p.add_argument("--data", required=True, nargs="+", type=Path, help="dataset files (xlsx/csv/tsv/jsonl)")
    p.add_argument(
        "--format", default="auto", choices=["auto", "single-turn", "continuous", "speech", "plain"]
    )
    p.add_argument("--strict-labels", action="store_true", help="unknown labels are an error, not dropped")
    p.add_argument(
        "--out", required=True, type=Path, help="directory for the checkpoint, metrics.json, plots"
    )
    p.add_argument(
        "--balance", type=int, metavar="N", help="sample N examples per label (the original: 9000)"
    )
    p.add_argument("--val-size", type=float, default=0.1)
    p.add_argument("--test-size", type=float, default=0.1)
    p.add_argument("--folds", type=int, metavar="K", help="K-fold cross-validation before the final model")
    p.add_argument(
        "--feedback",
        help="feedback export (.jsonl.gz file, directory, or s3://bucket/prefix): the lyrics of the songs "
        "users answered about, labelled through their answers (model_export.feedback)",
    )
    p.add_argument(
        "--feedback-bundle",
        type=Path,
        help="with --feedback: the bundle that served the feedback (the songs' prior vectors, chunking)",
    )
    p.add_argument(
        "--feedback-catalog",
        type=Path,
        help="with --feedback: the catalog JSONL (the one ingestion scored) whose lyrics are labelled",
    )
    p.add_argument(
        "--feedback-weight",
        type=float,
        default=learn.LearnConfig.max_weight,
        help="the most a feedback-labelled lyric chunk weighs in the loss (its weight is n/(n+2), n answers)",
    )
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--eval-batch-size", type=int, default=d.eval_batch_size, help="batch size to evaluate")
    p.add_argument("--max-length", type=int, default=d.max_length)
    p.add_argument("--dropout", type=float, help="hidden, attention and classifier dropout")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay (L2)")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument(
        "--lexical",
        action="store_true",
        help="also train a lexical head beside the network, fused where validation NLL says it helps "
        "(off by default: it sharpens the distributions; docs/model.md §2c)",
    )
    p.add_argument("--class-weights", action="store_true", help="inverse-frequency class weights in the loss")
    p.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio)
    p.add_argument("--patience", type=int, help="early stopping: epochs without a better validation macro-F1")
    p.add_argument("--grad-clip", type=float, default=d.grad_clip, help="gradient norm clip (0: none)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


# flag: (test, what it must be); checked before anything is loaded
_RANGES: dict[str, tuple[Any, str]] = {
    "epochs": (lambda v: v >= 1, "at least 1"),
    "lr": (lambda v: 0 < v < 1, "between 0 and 1 (exclusive)"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "eval_batch_size": (lambda v: v >= 1, "at least 1"),
    "max_length": (lambda v: v >= 2, "at least 2"),  # and at most the checkpoint's positions (later)
    "dropout": (lambda v: 0 <= v < 1, "at least 0 and below 1"),
    "weight_decay": (lambda v: v >= 0, "at least 0"),
    "label_smoothing": (lambda v: 0 <= v < 1, "at least 0 and below 1"),
    "warmup_ratio": (lambda v: 0 <= v <= 1, "between 0 and 1"),
    "patience": (lambda v: v >= 1, "at least 1"),
    "grad_clip": (lambda v: v >= 0, "at least 0 (0 turns clipping off)"),
    "balance": (lambda v: v >= 1, "at least 1"),
    "folds": (lambda v: v >= 2, "at least 2"),
    "feedback_weight": (lambda v: v > 0, "above 0"),
    "val_size": (lambda v: 0 < v < 1, "between 0 and 1 (exclusive)"),
    "test_size": (lambda v: 0 < v < 1, "between 0 and 1 (exclusive)"),
}


def check_ranges(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject out-of-range options with argparse's usage error (exit status 2)."""
    for name, (ok, what) in _RANGES.items():
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and ok(value)):
            parser.error(f"--{name.replace('_', '-')} must be {what}, got {value}")
    if args.feedback and (args.feedback_bundle is None or args.feedback_catalog is None):
        parser.error(
            "--feedback needs --feedback-bundle (the bundle that served the feedback: its songs' lyric "
            "vectors are the prior the answers move) and --feedback-catalog (the songs' lyrics)"
        )
    if args.val_size + args.test_size >= 1:
        parser.error(f"--val-size + --test-size must be below 1, got {args.val_size + args.test_size}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_ranges(parser, args)
    setup_logging()
    cfg = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        max_length=args.max_length,
        dropout=args.dropout,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        class_weights=args.class_weights,
        warmup_ratio=args.warmup_ratio,
        patience=args.patience,
        grad_clip=args.grad_clip,
        seed=args.seed,
        progress=not args.no_progress,
    )
    metrics = run_training(args, cfg)
    test = metrics["final"]["test"]
    print(f"wrote {args.out}: test accuracy {test['accuracy']}, macro-F1 {test['macro_f1']}")
    print("per-class F1: " + ", ".join(f"{k} {v}" for k, v in test["per_class_f1"].items()))
    if "folds" in metrics:
        f = metrics["folds"]
        print(
            f"{f['k']}-fold: accuracy {f['accuracy']['mean']} ± {f['accuracy']['std']}, "
            f"macro-F1 {f['macro_f1']['mean']} ± {f['macro_f1']['std']}"
        )
    export = f"python -m model_export.export --checkpoint {args.out} --eval {args.out / 'test.tsv'}"
    print(f"next: {export} --out BUNDLE_DIR")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
