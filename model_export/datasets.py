"""Labelled Korean texts from the AI-Hub emotion datasets and plain files, cleaned and split for training.

Formats (``--format``, or detected from the file):

| format | file | text | label |
|---|---|---|---|
| ``single-turn`` | 단발성 대화 데이터셋 (xlsx) | ``Sentence`` | ``Emotion`` (Korean) |
| ``continuous`` | 연속적 대화 데이터셋 (xlsx) | ``발화`` | ``감정`` (Korean, noisy) |
| ``speech`` | 감정 분류를 위한 대화 음성 데이터셋 (CSV, cp949) | ``발화문`` | ``상황`` (English) |
| ``plain`` | CSV / TSV / JSONL (UTF-8) | ``text`` | ``label`` |

Label policy: spellings go through ``moodtune.labels.canonical_label``. Noisy spellings (the continuous
set has e.g. ``분ㄴ``, ``ㅈ중립``) are repaired only when one reading is certain: stray compatibility jamo
and punctuation are removed, and what is left must be a known spelling or the start of exactly one
Korean label name (``분ㄴ`` → 분 → 분노; ``ㅈ중립`` → 중립). Everything else is dropped and counted in the
report (``--strict-labels`` turns an unknown label into an error instead). Texts are NFC-normalised
(``moodtune.emotion.text.normalize_text``); empty texts are dropped; duplicates keep one copy, and a text that
appears with different labels is dropped entirely.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model_export.errors import ModelExportError
from moodtune.emotion.text import normalize_text
from moodtune.labels import KOREAN, LABELS, canonical_label

FORMATS = ("auto", "single-turn", "continuous", "speech", "plain")
TEXT_COLUMNS = ("text", "sentence", "발화", "발화문", "문장", "utterance")
LABEL_COLUMNS = ("label", "emotion", "감정", "상황")
_JAMO_AND_PUNCT = re.compile(r"[\u3131-\u318e\s\W_\d]+")


@dataclass(frozen=True)
class Example:
    """One labelled text; ``weight`` scales its loss (feedback rows use it)."""

    text: str
    label: str
    weight: float = 1.0


@dataclass
class LoadReport:
    """What a load did: rows read, labels mapped or repaired, rows dropped and why."""

    source: str
    rows: int = 0
    mapped: Counter[tuple[str, str]] = field(default_factory=Counter)
    repaired: Counter[tuple[str, str]] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)

    def merge(self, other: LoadReport) -> None:
        self.rows += other.rows
        self.mapped.update(other.mapped)
        self.repaired.update(other.repaired)
        self.dropped.update(other.dropped)
        self.kept.update(other.kept)

    def summary(self) -> str:
        """Readable multi-line summary."""
        lines = [f"{self.source}: {self.rows} rows, {sum(self.kept.values())} kept"]
        lines.append("  kept per label: " + ", ".join(f"{lb} {self.kept.get(lb, 0)}" for lb in LABELS))
        if self.mapped:
            lines.append(
                "  mapped: " + ", ".join(f"{r}→{c} ({n})" for (r, c), n in sorted(self.mapped.items()))
            )
        if self.repaired:
            lines.append(
                "  repaired: " + ", ".join(f"{r!r}→{c} ({n})" for (r, c), n in sorted(self.repaired.items()))
            )
        if self.dropped:
            lines.append("  dropped: " + ", ".join(f"{why} ({n})" for why, n in self.dropped.most_common()))
        return "\n".join(lines)


# --- labels ------------------------------------------------------------------------------------------


def repair_label(raw: str) -> str | None:
    """The canonical label of a noisy spelling when exactly one reading fits, else None (see module doc)."""
    core = _JAMO_AND_PUNCT.sub("", normalize_text(raw))
    if not core:
        return None
    if label := canonical_label(core):
        return label
    names = {**{k: lb for lb, k in KOREAN.items()}, "행복": "joy"}
    candidates = {lb for name, lb in names.items() if name.startswith(core)}
    return candidates.pop() if len(candidates) == 1 else None


def map_label(raw: object, report: LoadReport, repair: bool) -> str | None:
    """Canonical label for a cell, recording the mapping (or the reason it was dropped) in ``report``."""
    spelled = "" if raw is None else str(raw).strip()
    if not spelled:
        report.dropped["empty label"] += 1
        return None
    if label := canonical_label(spelled):
        if spelled != label:
            report.mapped[(spelled, label)] += 1
        return label
    if repair and (label := repair_label(spelled)):
        report.repaired[(spelled, label)] += 1
        return label
    report.dropped[f"unknown label {spelled!r}"] += 1
    return None


# --- readers -----------------------------------------------------------------------------------------


def _find_columns(header: Sequence[object]) -> tuple[int, int] | None:
    names = [str(h).strip().lower() if h is not None else "" for h in header]
    text = next((names.index(c) for c in TEXT_COLUMNS if c in names), None)
    label = next((names.index(c) for c in LABEL_COLUMNS if c in names), None)
    return None if text is None or label is None else (text, label)


def _table_rows(
    rows: Iterable[Sequence[object]], path: Path, scan: int = 5
) -> Iterator[tuple[object, object]]:
    """(text, label) cells of a table whose header row is among the first ``scan`` rows."""
    iterator = iter(rows)
    seen = []
    for row in iterator:
        seen.append(row)
        if (columns := _find_columns(row)) is not None:
            text_i, label_i = columns
            for data in iterator:
                cells = list(data)
                if not any(c not in (None, "") for c in cells):
                    continue
                cells += [None] * (max(text_i, label_i) + 1 - len(cells))
                yield cells[text_i], cells[label_i]
            return
        if len(seen) >= scan:
            break
    raise ModelExportError(
        f"{path}: no header row with a text column ({', '.join(TEXT_COLUMNS)}) and a label column "
        f"({', '.join(LABEL_COLUMNS)}) in its first {scan} rows. Check the file is the dataset you meant, "
        "or give a CSV/TSV with 'text' and 'label' columns."
    )


def _xlsx_rows(path: Path) -> Iterator[tuple[object, object]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise ModelExportError(
            f"{path}: not a readable .xlsx workbook ({exc}). Re-download or re-save it."
        ) from exc
    try:
        yield from _table_rows(workbook.worksheets[0].iter_rows(values_only=True), path)
    finally:
        workbook.close()


def _read_text(path: Path, encodings: Sequence[str]) -> str:
    data = path.read_bytes()
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ModelExportError(f"{path}: not text in {' or '.join(encodings)}. Save it as UTF-8.")


def _delimited_rows(path: Path, encodings: Sequence[str]) -> Iterator[tuple[object, object]]:
    text = _read_text(path, encodings)
    kind = "TSV" if path.suffix.lower() == ".tsv" else "CSV"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if kind == "TSV" else ",")
    try:
        yield from _table_rows(reader, path)
    except csv.Error as exc:  # e.g. a field over csv's size limit (an unclosed quote swallows the file)
        raise ModelExportError(
            f"{path}:{reader.line_num}: not readable as {kind} ({exc}). Check the quoting near that line."
        ) from exc


def _jsonl_rows(path: Path) -> Iterator[tuple[object, object]]:
    for number, line in enumerate(_read_text(path, ["utf-8-sig"]).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ModelExportError(
                f"{path}:{number}: not valid JSON ({exc.msg}). Fix or remove that line."
            ) from exc
        if not isinstance(row, dict) or "text" not in row or "label" not in row:
            raise ModelExportError(f"{path}:{number}: expected an object with 'text' and 'label' keys.")
        yield row["text"], row["label"]


def detect_format(path: Path) -> str:
    """Guess the format from the extension and the header."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(path, read_only=True)
            first = [
                str(c).strip() for c in next(workbook.worksheets[0].iter_rows(values_only=True), ()) if c
            ]
            workbook.close()
        except Exception as exc:  # openpyxl raises many types for a bad file
            raise ModelExportError(f"{path}: not a readable .xlsx workbook ({exc}).") from exc
        return "single-turn" if {"Sentence", "Emotion"} <= set(first) else "continuous"
    if suffix == ".csv":
        # Only the header line: a fixed-size prefix could end inside a two-byte cp949 character.
        with path.open("rb") as f:
            header = f.readline(1 << 16)
        for encoding in ("utf-8-sig", "cp949"):
            # A header cut at 64 KiB may end in half a character; ignoring it keeps the column names.
            if "발화문" in header.decode(encoding, errors="ignore"):
                return "speech"
        return "plain"
    if suffix in (".tsv", ".jsonl"):
        return "plain"
    raise ModelExportError(f"{path}: unknown file type {suffix!r}; use .xlsx, .csv, .tsv or .jsonl.")


def load_file(path: Path, fmt: str = "auto", strict_labels: bool = False) -> tuple[list[Example], LoadReport]:
    """Read one dataset file into normalised examples (not yet deduplicated) and a report."""
    path = Path(path)
    if not path.is_file():
        raise ModelExportError(f"{path}: no such file. Download the dataset and pass its path.")
    if fmt not in FORMATS:
        raise ModelExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt in ("single-turn", "continuous"):
        cells = _xlsx_rows(path)
    elif fmt == "speech":
        cells = _delimited_rows(path, ["cp949", "utf-8-sig"])
    elif path.suffix.lower() == ".jsonl":
        cells = _jsonl_rows(path)
    else:
        cells = _delimited_rows(path, ["utf-8-sig"])

    report = LoadReport(source=f"{path} ({fmt})")
    examples = []
    for raw_text, raw_label in cells:
        report.rows += 1
        label = map_label(raw_label, report, repair=fmt != "plain")
        text = normalize_text("" if raw_text is None else str(raw_text))
        if label is None:
            continue
        if not text:
            report.dropped["empty text"] += 1
            continue
        examples.append(Example(text, label))
        report.kept[label] += 1
    unknown = {why: n for why, n in report.dropped.items() if why.startswith("unknown label")}
    if unknown and (strict_labels or fmt == "plain"):
        raise ModelExportError(
            f"{path}: labels that are not one of {', '.join(LABELS)} (or a known spelling): "
            + ", ".join(f"{why[len('unknown label ') :]} ×{n}" for why, n in unknown.items())
            + (
                ". Fix them (a plain file must use moodtune's labels or their known spellings)."
                if fmt == "plain"
                else ". Fix them, or drop those rows by leaving out --strict-labels."
            )
        )
    if not examples:
        raise ModelExportError(f"{path}: no usable rows.\n{report.summary()}")
    return examples, report


def read_plain(path: Path) -> list[Example]:
    """Examples from a plain CSV/TSV/JSONL file with text and label (unknown labels are an error)."""
    examples, _ = load_file(Path(path), "plain", strict_labels=True)
    return examples


def deduplicate(examples: Iterable[Example], report: LoadReport | None = None) -> list[Example]:
    """Keep the first copy of each text; drop every copy of a text seen with different labels."""
    labels_of: dict[str, set[str]] = {}
    first: dict[str, Example] = {}
    total = 0
    for e in examples:
        total += 1
        labels_of.setdefault(e.text, set()).add(e.label)
        first.setdefault(e.text, e)
    kept = [e for text, e in first.items() if len(labels_of[text]) == 1]
    if report is not None:
        conflicting = len(first) - len(kept)
        if conflicting:
            report.dropped["text with conflicting labels"] += conflicting
        if total - len(first):
            report.dropped["duplicate text"] += total - len(first)
    return kept


def load_datasets(
    paths: Sequence[Path], fmt: str = "auto", strict_labels: bool = False
) -> tuple[list[Example], LoadReport]:
    """Load several files, deduplicate across them, and return one combined report."""
    report = LoadReport(source=", ".join(str(p) for p in paths))
    everything: list[Example] = []
    for path in paths:
        examples, part = load_file(path, fmt, strict_labels)
        report.merge(part)
        everything += examples
    unique = deduplicate(everything, report)
    report.kept = Counter(e.label for e in unique)
    return unique, report


# --- balancing and splits ----------------------------------------------------------------------------


def balance(examples: Sequence[Example], per_label: int, seed: int) -> tuple[list[Example], list[str]]:
    """Sample ``per_label`` examples of each label (the original used 9,000). A label with fewer keeps all
    of them, and a message says so."""
    rng = random.Random(seed)
    by_label: dict[str, list[Example]] = {label: [] for label in LABELS}
    for e in examples:
        by_label[e.label].append(e)
    out: list[Example] = []
    messages = []
    for label, group in by_label.items():
        if len(group) < per_label:
            messages.append(
                f"{label}: only {len(group)} examples, fewer than the {per_label} asked; kept all "
                "(add data for it, or train with --class-weights)."
            )
            out += group
        else:
            out += rng.sample(group, per_label)
    rng.shuffle(out)
    return out, messages


def _check_stratifiable(examples: Sequence[Example], parts: int, what: str) -> None:
    counts = Counter(e.label for e in examples)
    short = {lb: n for lb, n in counts.items() if n < parts}
    if short:
        raise ModelExportError(
            f"{what} needs at least {parts} examples of each label; "
            + ", ".join(f"{lb} has {n}" for lb, n in short.items())
            + ". Add data or use fewer parts."
        )


def _check_split_sizes(n: int, n_labels: int, val_size: float, test_size: float) -> None:
    """Each part of a stratified split must hold at least one example per label; check the part sizes
    scikit-learn will make (test = ceil(test_size·n), then validation out of the rest) before it
    fails with its own message."""
    n_test = math.ceil(test_size * n)
    n_rest = n - n_test
    n_val = math.ceil(val_size / (1 - test_size) * n_rest)
    parts = {"test": n_test, "validation": n_val, "train": n_rest - n_val}
    small = {name: size for name, size in parts.items() if size < n_labels}
    if small:
        hint = "lower --val-size/--test-size" if "train" in small else "raise --val-size/--test-size"
        raise ModelExportError(
            f"{n} examples are too few for a stratified split with {n_labels} labels: "
            + ", ".join(f"the {name} part would get {size}" for name, size in small.items())
            + f", and each part needs at least one example per label. Add data, or {hint}."
        )


def stratified_split(
    examples: Sequence[Example], val_size: float, test_size: float, seed: int
) -> tuple[list[Example], list[Example], list[Example]]:
    """Stratified train/validation/test split (fractions of the whole)."""
    from sklearn.model_selection import train_test_split

    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise ModelExportError(
            f"val size {val_size} and test size {test_size} must be fractions summing below 1."
        )
    _check_stratifiable(examples, 3, "a train/validation/test split")
    _check_split_sizes(len(examples), len({e.label for e in examples}), val_size, test_size)
    try:
        rest, test = train_test_split(
            list(examples), test_size=test_size, stratify=[e.label for e in examples], random_state=seed
        )
        train, val = train_test_split(
            rest, test_size=val_size / (1 - test_size), stratify=[e.label for e in rest], random_state=seed
        )
    except ValueError as exc:  # a stratification the size checks above did not foresee
        raise ModelExportError(
            f"cannot split {len(examples)} examples into stratified train/validation/test parts ({exc}). "
            "Add data or change --val-size/--test-size."
        ) from exc
    return train, val, test


def stratified_folds(
    examples: Sequence[Example], k: int, seed: int
) -> list[tuple[list[Example], list[Example]]]:
    """K stratified (train, validation) folds."""
    from sklearn.model_selection import StratifiedKFold

    if k < 2:
        raise ModelExportError(f"--folds must be at least 2, got {k}.")
    _check_stratifiable(examples, k, f"{k}-fold cross-validation")
    folder = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    labels = [e.label for e in examples]
    return [
        ([examples[i] for i in train], [examples[i] for i in val])
        for train, val in folder.split(list(range(len(examples))), labels)
    ]
