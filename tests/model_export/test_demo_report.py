"""model_export.demo_report on the committed demo bundle: its figures agree with the export's own."""

import json
from pathlib import Path

import pytest

from model_export.demo_report import SAMPLE_TEXTS, build_report, main
from moodtune.labels import LABELS

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "demo"
DATA = ROOT / "data" / "demo"


@pytest.fixture(scope="module")
def report() -> dict:
    return build_report(DEMO, DATA / "songs.jsonl", DATA / "song_intent.tsv", DATA / "reference.tsv", top=3)


def test_reference_accuracy_matches_the_export(report):
    # Two code paths: the export scored reference.tsv in model_export.export, the report through moodtune.
    recorded = json.loads((DEMO / "manifest.json").read_text(encoding="utf-8"))["metrics"]["named_evals"]
    ref = report["reference"]
    assert ref["n"] == recorded["reference"]["n"] == 70
    assert ref["accuracy"] == pytest.approx(recorded["reference"]["accuracy_onnx_int8"], abs=1.5 / 70)
    assert len(ref["misses"]) == round((1 - ref["accuracy"]) * ref["n"])
    assert all(m["gold"] != m["predicted"] and m["predicted"] in LABELS for m in ref["misses"])


def test_catalog_agreement_counts_every_song(report):
    cat = report["catalog"]
    assert cat["songs"] == 300
    assert sum(cat["scored_dominant"].values()) == 300
    assert cat["matched"] == sum(row["matched"] for row in cat["by_intent"].values())
    assert sum(row["n"] for row in cat["by_intent"].values()) == 300


def test_the_bundles_chunking_is_the_best_measured(report):
    by_size = report["matched_by_lines_per_chunk"]
    assert set(by_size) == {1, 2, 3, 4}
    assert by_size[report["lines_per_chunk"]] == report["catalog"]["matched"] == max(by_size.values())


def test_samples_are_one_text_per_emotion_with_songs(report):
    samples = report["samples"]
    assert [s["text"] for s in samples] == list(SAMPLE_TEXTS)
    assert all(len(s["songs"]) == 3 for s in samples)
    # Each sample text was written for one emotion, in label order; the demo model should read it so.
    assert [s["dominant"] for s in samples] == list(LABELS)


def test_cli_prints_json(capsys):
    paths = ["--catalog", str(DATA / "songs.jsonl"), "--intent", str(DATA / "song_intent.tsv")]
    args = ["--bundle", str(DEMO), *paths, "--reference", str(DATA / "reference.tsv"), "--top", "1"]
    assert main([*args, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model_version"].startswith("demo-")


def test_cli_refuses_top_below_one():
    with pytest.raises(SystemExit):
        main(["--top", "0"])


def test_the_journey_report_meets_the_issues_goals_on_the_demo_catalog():
    from model_export.demo_report import build_journey_report

    report = build_journey_report(
        DEMO, DATA / "songs.jsonl", DATA / "song_intent.tsv", DATA / "reference.tsv"
    )
    rows = {r["lambda"]: r for r in report["diversity"]["rows"]}
    assert rows["plain"]["similarity"] >= rows[0.6]["similarity"]  # MMR never adds similarity
    assert all(r["repeated_artist_lists"] == 0 for k, r in rows.items() if k != "plain")
    repeated = report["repeated_artists"]
    assert repeated["distribution"]["diverse"] == repeated["dominant"]["diverse"] == 0
    for metric in ("cosine", "jensen_shannon"):
        figures = report["journeys"][metric]
        assert figures["steps_kept_pct"] >= 95.0
        assert figures["first_song_ratio_min"] >= 0.9
    assert len(report["journeys"]["examples"]) == 3
    assert {m["metric"] for m in report["metrics"]} == {"cosine", "jensen_shannon"}
