"""Satisfaction report of a feedback export: rates with Wilson 95% intervals by group.

Each feedback (one song of one recommendation) counts once, with its latest answer. The table and
the PNG chart are drawn by the CLI (``moodtune_cli.report_view``), so the layer carries neither rich
nor matplotlib.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodtune.feedback.export import read_export
from moodtune.feedback.rows import FeedbackRow, latest_feedback
from moodtune.labels import LABELS

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile
GROUPS: tuple[tuple[str, str], ...] = (
    ("overall", "overall"),
    ("model_version", "model version"),
    ("dominant", "dominant emotion"),
    ("mode", "mode"),
    ("kind", "kind"),
)


class ReportError(Exception):
    """The report cannot be made (no rows, no matplotlib for the chart): one clear message."""


def wilson_interval(satisfied: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``satisfied / n`` (good at small n and near 0 or 1)."""
    if n <= 0:
        raise ValueError("an interval needs at least one observation")
    if not 0 <= satisfied <= n:
        raise ValueError("satisfied must lie between 0 and n")
    p = satisfied / n
    z2 = z * z
    denominator = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


@dataclass(frozen=True)
class Rate:
    """The satisfaction rate of one group (e.g. model_version = demo-1234) with its 95% interval."""

    group: str
    key: str
    n: int
    satisfied: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.satisfied / self.n


@dataclass
class SatisfactionReport:
    """Rates by group, and what was read: rows, distinct feedback, rows that were not valid."""

    rates: list[Rate]
    rows_read: int
    feedback: int
    problems: Counter[str] = field(default_factory=Counter)

    def group(self, name: str) -> list[Rate]:
        return [r for r in self.rates if r.group == name]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (``moodtune report --json``)."""
        return {
            "rows_read": self.rows_read,
            "feedback": self.feedback,
            "problems": dict(sorted(self.problems.items())),
            "rates": [
                {
                    "group": r.group,
                    "key": r.key,
                    "n": r.n,
                    "satisfied": r.satisfied,
                    "rate": round(r.rate, 6),
                    "ci95": [round(r.low, 6), round(r.high, 6)],
                }
                for r in self.rates
            ],
        }


def _rates(
    group: str, rows: list[FeedbackRow], key: Callable[[FeedbackRow], str], order: list[str]
) -> list[Rate]:
    n: Counter[str] = Counter(key(r) for r in rows)
    liked: Counter[str] = Counter(key(r) for r in rows if r.satisfied)
    out = []
    for k in [k for k in order if k in n] + sorted(set(n) - set(order)):
        low, high = wilson_interval(liked[k], n[k])
        out.append(Rate(group=group, key=k, n=n[k], satisfied=liked[k], low=low, high=high))
    return out


def satisfaction(rows: Iterable[FeedbackRow]) -> list[Rate]:
    """Rates overall, by model version, by the text's dominant emotion, by mode and by kind
    (recommendation or journey), counting each
    (recommendation_id, song_id) once with its latest answer."""
    feedback = latest_feedback(rows)
    if not feedback:
        return []
    return [
        *_rates("overall", feedback, lambda r: "all", ["all"]),
        *_rates("model_version", feedback, lambda r: r.model_version, []),
        *_rates("dominant", feedback, lambda r: r.dominant, list(LABELS)),
        *_rates("mode", feedback, lambda r: r.mode, ["distribution", "dominant"]),
        *_rates("kind", feedback, lambda r: r.kind, ["recommendation", "journey"]),
    ]


def build_report(source: str | Path, *, s3_client: Any = None) -> SatisfactionReport:
    """Read an export (local directory, file, or ``s3://bucket/prefix``) and compute its rates."""
    problems: Counter[str] = Counter()
    rows = read_export(source, s3_client=s3_client, problems=problems)
    if not rows:
        raise ReportError(f"no feedback rows in {source}")
    rates = satisfaction(rows)
    return SatisfactionReport(rates=rates, rows_read=len(rows), feedback=rates[0].n, problems=problems)
