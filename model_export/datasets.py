"""Labelled Korean texts from the AI-Hub emotion datasets and plain files, cleaned and split for training.

Formats (``--format``, or detected from the file):

| format | file | text | label |
|---|---|---|---|
| ``single-turn`` | 단발성 대화 데이터셋 (xlsx) | ``Sentence`` | ``Emotion`` (Korean) |
| ``continuous`` | 연속적 대화 데이터셋 (xlsx) | ``발화`` | ``감정`` (Korean, noisy) |
| ``speech`` | 감정 분류를 위한 대화 음성 데이터셋 (CSV, cp949) | ``발화문`` | the votes, else ``상황`` |
| ``plain`` | CSV / TSV / JSONL (UTF-8) | ``text`` | ``label`` or a soft ``joy:0.6,fear:0.4`` |

Soft labels: an example may carry a target distribution (``Example.soft``) instead of one label;
training fits it with soft cross-entropy, one-hot being the special case. ``Example.label`` is then
the distribution's top label (used for balancing, stratification and accuracy). A plain file's soft
label names labels (any known spelling) with proportions that sum to 1 (±0.01); anything else is an
error naming the file and line.

The speech set's five annotators become a distribution of votes: each annotator's emotion counts
as one vote, and the distribution is the share of votes (as in human-label training, Peterson et
al., ICCV 2019). Intensities (``N번 감정세기``) do not weight the votes: they grade how strong an
emotion is, not whether an annotator heard it, and neutral is always given intensity 0, so weighting
by intensity would erase every neutral vote. Empty annotator cells are skipped (the row uses the
votes it has; the load report counts such rows); a row with no vote at all, or a file without
annotator columns, falls back to ``상황`` (counted in the report).

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
    """One labelled text; ``weight`` scales its loss (feedback rows use it); ``soft``, when set, is the
    target distribution in label order (``label`` is then its top label)."""

    text: str
    label: str
    weight: float = 1.0
    soft: tuple[float, ...] | None = None

    @property
    def target(self) -> tuple[float, ...]:
        """The training target: ``soft``, or the one-hot vector of ``label``."""
        if self.soft is not None:
            return self.soft
        return tuple(1.0 if lb == self.label else 0.0 for lb in LABELS)

    @property
    def stratum(self) -> str:
        """What splits stratify on: the label, or for a soft target the labels it names (``joy+fear``)."""
        if self.soft is None:
            return self.label
        return "+".join(lb for lb, p in zip(LABELS, self.soft, strict=True) if p > 0)


def soft_example(text: str, distribution: Sequence[float], weight: float = 1.0) -> Example:
    """An example with a target distribution (label order); one label at 1.0 makes a hard example."""
    total = float(sum(distribution))
    soft = tuple(round(float(p) / total, 6) for p in distribution)
    top = max(range(len(soft)), key=lambda i: (soft[i], -i))
    if soft[top] >= 1.0:
        return Example(text, LABELS[top], weight)
    return Example(text, LABELS[top], weight, soft)


def parse_soft_label(raw: str) -> tuple[float, ...]:
    """``"joy:0.6,fear:0.4"`` -> a distribution in label order; ``ValueError`` saying what is wrong."""
    values = [0.0] * len(LABELS)
    for part in raw.split(","):
        name, sep, number = part.partition(":")
        if not sep:
            raise ValueError(f"{part.strip()!r} is not label:probability")
        label = canonical_label(name.strip())
        if label is None:
            raise ValueError(f"unknown emotion {name.strip()!r} (known: {', '.join(LABELS)})")
        try:
            p = float(number)
        except ValueError:
            raise ValueError(f"{number.strip()!r} is not a number") from None
        if not math.isfinite(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{label}: {number.strip()} is not a probability in [0, 1]")
        if values[LABELS.index(label)]:
            raise ValueError(f"{label} is given twice")
        values[LABELS.index(label)] = p
    if abs(sum(values) - 1.0) > 0.01:
        raise ValueError(f"the proportions sum to {sum(values):.3f}, not 1 (±0.01)")
    return tuple(values)


@dataclass
class LoadReport:
    """What a load did: rows read, labels mapped or repaired, rows dropped and why."""

    source: str
    rows: int = 0
    mapped: Counter[tuple[str, str]] = field(default_factory=Counter)
    repaired: Counter[tuple[str, str]] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    # Soft labels: rows kept with a distribution, and for the speech set how the votes were read.
    soft: int = 0
    votes: Counter[str] = field(default_factory=Counter)

    def merge(self, other: LoadReport) -> None:
        self.rows += other.rows
        self.soft += other.soft
        self.votes.update(other.votes)
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
        if self.soft:
            lines.append(f"  soft labels (a distribution, not one label): {self.soft}")
        if self.votes:
            votes = ", ".join(f"{why} ({n})" for why, n in self.votes.most_common())
            lines.append("  annotator votes: " + votes)
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


_VOTE_COLUMN = re.compile(r"^([1-9])번\s*감정$")


@dataclass(frozen=True)
class Cells:
    """One data row's cells: its line (1-based row of the table), text, label and annotator votes."""

    line: int
    text: object
    label: object
    votes: tuple[object, ...] = ()


def _find_columns(header: Sequence[object]) -> tuple[int, int, tuple[int, ...]] | None:
    names = [str(h).strip().lower() if h is not None else "" for h in header]
    text = next((names.index(c) for c in TEXT_COLUMNS if c in names), None)
    label = next((names.index(c) for c in LABEL_COLUMNS if c in names), None)
    votes = tuple(i for i, name in enumerate(names) if _VOTE_COLUMN.match(name))
    return None if text is None or label is None else (text, label, votes)


def _table_rows(rows: Iterable[Sequence[object]], path: Path, scan: int = 5) -> Iterator[Cells]:
    """The data rows of a table whose header row is among the first ``scan`` rows."""
    iterator = iter(rows)
    seen = []
    for row in iterator:
        seen.append(row)
        if (columns := _find_columns(row)) is not None:
            text_i, label_i, vote_is = columns
            width = max(text_i, label_i, *vote_is) + 1
            for line, data in enumerate(iterator, start=len(seen) + 1):
                cells = list(data)
                if not any(c not in (None, "") for c in cells):
                    continue
                cells += [None] * (width - len(cells))
                yield Cells(line, cells[text_i], cells[label_i], tuple(cells[i] for i in vote_is))
            return
        if len(seen) >= scan:
            break
    raise ModelExportError(
        f"{path}: no header row with a text column ({', '.join(TEXT_COLUMNS)}) and a label column "
        f"({', '.join(LABEL_COLUMNS)}) in its first {scan} rows. Check the file is the dataset you meant, "
        "or give a CSV/TSV with 'text' and 'label' columns."
    )


def _xlsx_rows(path: Path) -> Iterator[Cells]:
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


def _delimited_rows(path: Path, encodings: Sequence[str]) -> Iterator[Cells]:
    text = _read_text(path, encodings)
    kind = "TSV" if path.suffix.lower() == ".tsv" else "CSV"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if kind == "TSV" else ",")
    try:
        yield from _table_rows(reader, path)
    except csv.Error as exc:  # e.g. a field over csv's size limit (an unclosed quote swallows the file)
        raise ModelExportError(
            f"{path}:{reader.line_num}: not readable as {kind} ({exc}). Check the quoting near that line."
        ) from exc


def _jsonl_rows(path: Path) -> Iterator[Cells]:
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
        yield Cells(number, row["text"], row["label"])


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


def _voted_example(text: str, cells: Cells, report: LoadReport) -> Example | None:
    """The speech set's row as a distribution of its annotators' votes (module doc); ``상황`` when no
    vote can be read."""
    votes = [0.0] * len(LABELS)
    given = 0
    for cell in cells.votes:
        if cell is None or not str(cell).strip():
            continue
        label = map_label(cell, LoadReport(source=""), repair=True)
        if label is None:
            report.votes["unknown annotator label skipped"] += 1
            continue
        votes[LABELS.index(label)] += 1.0
        given += 1
    if given == 0:
        report.votes["no annotator vote: 상황 used"] += 1
        label = map_label(cells.label, report, repair=True)
        return None if label is None else Example(text, label)
    if given < len(cells.votes):
        report.votes["rows with some annotator cells empty (the votes given were used)"] += 1
    example = soft_example(text, votes)
    # A tie between the top votes is broken by 상황 when it is among them (label order otherwise).
    situation = canonical_label(str(cells.label or "").strip()) or repair_label(str(cells.label or ""))
    top = max(votes)
    if example.soft is not None and situation and votes[LABELS.index(situation)] == top:
        example = Example(text, situation, example.weight, example.soft)
    report.votes["rows read from annotator votes"] += 1
    return example


def load_file(path: Path, fmt: str = "auto", strict_labels: bool = False) -> tuple[list[Example], LoadReport]:
    """Read one dataset file into normalised examples (not yet deduplicated) and a report."""
    path = Path(path)
    if not path.is_file():
        raise ModelExportError(f"{path}: no such file. Download the dataset and pass its path.")
    if fmt not in FORMATS:
        raise ModelExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    fmt = detect_format(path) if fmt == "auto" else fmt
    rows: Iterable[Cells]
    if fmt in ("single-turn", "continuous"):
        rows = _xlsx_rows(path)
    elif fmt == "speech":
        rows = _delimited_rows(path, ["cp949", "utf-8-sig"])
    elif path.suffix.lower() == ".jsonl":
        rows = _jsonl_rows(path)
    else:
        rows = _delimited_rows(path, ["utf-8-sig"])

    report = LoadReport(source=f"{path} ({fmt})")
    examples = []
    saw_votes = False
    for cells in rows:
        report.rows += 1
        text = normalize_text("" if cells.text is None else str(cells.text))
        example: Example | None
        if cells.votes:
            saw_votes = True
            example = _voted_example(text, cells, report)
        elif fmt == "plain" and isinstance(cells.label, str) and ":" in cells.label:
            try:
                example = soft_example(text, parse_soft_label(cells.label))
            except ValueError as exc:
                raise ModelExportError(f"{path}:{cells.line}: soft label {cells.label!r}: {exc}.") from None
        else:
            label = map_label(cells.label, report, repair=fmt != "plain")
            example = None if label is None else Example(text, label)
        if example is None:
            continue
        if not text:
            report.dropped["empty text"] += 1
            continue
        examples.append(example)
        report.kept[example.label] += 1
        report.soft += example.soft is not None
    if fmt == "speech" and not saw_votes:
        report.votes["no annotator columns: 상황 used"] += report.rows
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
    """Keep the first copy of each text; drop every copy of a text seen with different labels (or
    different target distributions)."""
    labels_of: dict[str, set[tuple[float, ...]]] = {}
    first: dict[str, Example] = {}
    total = 0
    for e in examples:
        total += 1
        labels_of.setdefault(e.text, set()).add(e.target)
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


def format_label(example: Example) -> str:
    """The label cell a plain file writes for ``example``: ``joy``, or ``joy:0.6,fear:0.4``."""
    if example.soft is None:
        return example.label
    return ",".join(f"{lb}:{p:g}" for lb, p in zip(LABELS, example.soft, strict=True) if p > 0)


def strata(examples: Sequence[Example], minimum: int) -> list[str]:
    """Each example's stratum for a split: its ``stratum`` (label, or the pair a soft target names),
    folded into its top label where that stratum has fewer than ``minimum`` examples, so that mixed
    rows are spread over every part like the others without making a split impossible."""
    counts = Counter(e.stratum for e in examples)
    return [e.stratum if counts[e.stratum] >= minimum else e.label for e in examples]


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
    # A stratum needs a member in each part: at least 1 / (smallest fraction) examples, and 3.
    minimum = max(3, math.ceil(1 / min(val_size, test_size, 1 - val_size - test_size)))
    try:
        rest, test = train_test_split(
            list(examples), test_size=test_size, stratify=strata(examples, minimum), random_state=seed
        )
        train, val = train_test_split(
            rest, test_size=val_size / (1 - test_size), stratify=strata(rest, minimum), random_state=seed
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
    labels = strata(examples, k)
    return [
        ([examples[i] for i in train], [examples[i] for i in val])
        for train, val in folder.split(list(range(len(examples))), labels)
    ]
