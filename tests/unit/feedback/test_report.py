"""The satisfaction report on a small hand-made export, checked against figures computed by hand.

The export holds 12 distinct feedback (plus one earlier answer to a song rated again, and one broken
row). Rates and Wilson 95% intervals, z = 1.95996, worked out by hand from
center = (k + z²/2) / (n + z²), half = z·sqrt(k(n-k)/n + z²/4) / (n + z²):

    group          key           k/n    rate     95% CI
    overall        all           7/12   58.33%   31.95% – 80.67%
    model_version  m-a           6/8    75.00%   40.93% – 92.85%
    model_version  m-b           1/4    25.00%    4.56% – 69.94%
    dominant       joy           4/5    80.00%   37.55% – 96.38%
    dominant       sadness       3/7    42.86%   15.82% – 74.95%
    mode           distribution  6/10   60.00%   31.27% – 83.18%
    mode           dominant      1/2    50.00%    9.45% – 90.55%
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

from moodtune.feedback.report import ReportError, build_report, wilson_interval
from moodtune.labels import LABELS
from moodtune_cli import app as cli
from moodtune_cli.report_view import plot_report, report_table

EXPECTED = [
    ("overall", "all", 12, 7, 0.3195, 0.8067),
    ("model_version", "m-a", 8, 6, 0.4093, 0.9285),
    ("model_version", "m-b", 4, 1, 0.0456, 0.6994),
    ("dominant", "joy", 5, 4, 0.3755, 0.9638),
    ("dominant", "sadness", 7, 3, 0.1582, 0.7495),
    ("mode", "distribution", 10, 6, 0.3127, 0.8318),
    ("mode", "dominant", 2, 1, 0.0945, 0.9055),
    ("kind", "recommendation", 12, 7, 0.3195, 0.8067),
]

# (model_version, dominant, mode, satisfied) of the 12 feedback
FEEDBACK = [
    ("m-a", "joy", "distribution", True),
    ("m-a", "joy", "distribution", True),
    ("m-a", "joy", "distribution", True),
    ("m-a", "joy", "dominant", True),
    ("m-a", "sadness", "distribution", True),
    ("m-a", "sadness", "distribution", True),
    ("m-a", "sadness", "distribution", False),
    ("m-a", "sadness", "distribution", False),
    ("m-b", "joy", "distribution", False),
    ("m-b", "sadness", "dominant", False),
    ("m-b", "sadness", "distribution", True),
    ("m-b", "sadness", "distribution", False),
]


def row(i: int, version: str, dominant: str, mode: str, satisfied: bool, day: int = 2) -> dict:
    scores = {label: (0.7 if label == dominant else 0.05) for label in LABELS}
    return {
        "recommendation_id": f"rec-{i:02d}",
        "created_at": f"2026-11-0{day}T08:00:00.000Z",
        "feedback_at": f"2026-11-0{day}T09:{i:02d}:00.000Z",
        "scores": scores,
        "dominant": dominant,
        "song_id": "s1",
        "song_dominant": dominant,
        "satisfied": satisfied,
        "mode": mode,
        "model_version": version,
    }


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    day1 = [row(6, "m-a", "sadness", "distribution", True, day=1)]  # rec-06 says "no" the next day
    day2 = [row(i, *f) for i, f in enumerate(FEEDBACK)] + [{"recommendation_id": "rec-99"}]
    for day, rows in ((1, day1), (2, day2)):
        folder = tmp_path / "feedback" / f"dt=2026-11-0{day}"
        folder.mkdir(parents=True)
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (folder / f"feedback-2026-11-0{day}.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    return tmp_path


def test_wilson_interval_matches_hand_computed_values() -> None:
    assert wilson_interval(6, 8) == pytest.approx((0.4093, 0.9285), abs=5e-5)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-5)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=5e-5)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_report_figures_on_a_hand_made_export(export_dir: Path) -> None:
    report = build_report(export_dir)
    assert (report.rows_read, report.feedback) == (13, 12)  # the repeated song counts once
    assert dict(report.problems) == {"missing:created_at": 1}
    got = [(r.group, r.key, r.n, r.satisfied, r.low, r.high) for r in report.rates]
    assert [g[:4] for g in got] == [e[:4] for e in EXPECTED]
    for (*_, low, high), (*_, want_low, want_high) in zip(got, EXPECTED, strict=True):
        assert (low, high) == pytest.approx((want_low, want_high), abs=5e-5)
    assert report.as_dict()["rates"][1] == {
        "group": "model_version",
        "key": "m-a",
        "n": 8,
        "satisfied": 6,
        "rate": 0.75,
        "ci95": [pytest.approx(0.4093, abs=5e-5), pytest.approx(0.9285, abs=5e-5)],
    }


def test_the_table_and_the_chart(export_dir: Path, tmp_path: Path) -> None:
    report = build_report(export_dir)
    console = Console(file=io.StringIO(), width=120)
    console.print(report_table(report))
    text = console.file.getvalue()
    assert "58.3%" in text and "32.0% – 80.7%" in text and "기쁨 (joy)" in text
    png = plot_report(report, tmp_path / "chart" / "satisfaction.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_without_matplotlib_the_chart_says_what_to_install(
    export_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(ReportError, match=r"needs matplotlib.*moodtune\[train\]"):
        plot_report(build_report(export_dir), tmp_path / "x.png")


def test_an_empty_export_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no feedback rows"):
        build_report(tmp_path)


def test_the_report_command(export_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    console = Console(file=io.StringIO(), width=140)
    png = tmp_path / "satisfaction.png"
    assert cli.main(["report", str(export_dir), "--png", str(png)], console) == 0
    text = console.file.getvalue()
    assert "75.0%" in text and "40.9% – 92.9%" in text and "missing:created_at 1" in text
    assert png.read_bytes()[:4] == b"\x89PNG"

    console = Console(file=io.StringIO())
    assert cli.main(["report", str(export_dir), "--json"], console) == 0
    figures = json.loads(console.file.getvalue())
    assert (figures["feedback"], figures["rates"][0]["satisfied"]) == (12, 7)

    assert cli.main(["report", str(tmp_path / "nowhere")], Console(file=io.StringIO())) == 1
    assert "moodtune: error:" in capsys.readouterr().err


def test_the_report_splits_by_kind() -> None:
    from moodtune.feedback.report import satisfaction
    from moodtune.feedback.rows import FeedbackRow

    base = {
        "created_at": "2026-11-20T10:00:00.000Z",
        "feedback_at": "2026-11-20T10:01:00.000Z",
        "scores": dict.fromkeys(LABELS, 1 / 7),
        "dominant": "joy",
        "song_dominant": "joy",
        "mode": "distribution",
        "model_version": "m-a",
    }
    rows = [
        FeedbackRow(**base, recommendation_id="r1", song_id="s1", satisfied=True),
        FeedbackRow(**base, recommendation_id="j1", song_id="s2", satisfied=True, kind="journey", step=0),
        FeedbackRow(**base, recommendation_id="j1", song_id="s3", satisfied=False, kind="journey", step=5),
    ]
    kinds = {r.key: (r.n, r.satisfied) for r in satisfaction(rows) if r.group == "kind"}
    assert kinds == {"recommendation": (1, 1), "journey": (2, 1)}
    line = json.loads(rows[2].to_json())
    assert (line["kind"], line["step"]) == ("journey", 5)
