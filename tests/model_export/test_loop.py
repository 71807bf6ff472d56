"""The loop simulation (model_export.loop): bad input, the users file's originality, isolation of the
ground truth, and a ``--quick`` 1-round loop end to end through the local stack (with resume and the
control arm)."""

from __future__ import annotations

import ast
import csv
import json
import sys
import traceback
from pathlib import Path

import pytest

from model_export.corpus_quality import normalise_key, similar_pairs
from model_export.errors import ModelExportError
from model_export.loop import read_eval, read_users

ROOT = Path(__file__).resolve().parents[2]
USERS = ROOT / "data" / "loop" / "users.tsv"
GROUND_TRUTH = ("song_intent.tsv", "users.tsv", "reference.tsv")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("feeling\tsecond\ttext\njoy\t\t좋아\nhappyish\t\t뭐지\n", ":3: unknown label 'happyish'"),
        ("feeling\tsecond\ttext\njoy\t\t\n", ":2: empty text"),
        ("feeling\tsecond\ttext\njoy\t좋아\n", ":2: 2 columns"),
        ("feeling\tsecond\ttext\njoy\tnope\t좋아\n", ":2: unknown label 'nope'"),
        ("label\ttext\njoy\t좋아\n", ":1: the users file needs the header"),
    ],
)
def test_a_bad_users_line_is_an_error_naming_it(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "users.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelExportError, match=message):
        read_users(path)


def test_a_bad_eval_line_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "eval.tsv"
    path.write_text("label\ttext\njoy\t좋아\n\nsadness\n", encoding="utf-8")
    with pytest.raises(ModelExportError, match=r"eval.tsv:4: 1 columns"):
        read_eval(path)
    assert read_eval(ROOT / "data" / "demo" / "reference.tsv")[0][0] == "joy"


def test_users_file_is_original_and_covers_every_feeling() -> None:
    users = read_users(USERS)
    assert {u.feelings[0] for u in users} == {
        "joy",
        "sadness",
        "anger",
        "fear",
        "surprise",
        "disgust",
        "neutral",
    }
    assert sum(len(u.feelings) == 2 for u in users) >= 7
    others = []
    for path in sorted((ROOT / "data" / "demo").glob("*.tsv")):
        with open(path, encoding="utf-8", newline="") as fh:
            others += [row["text"] for row in csv.DictReader(fh, delimiter="\t") if row.get("text")]
    keys = [normalise_key(u.text) for u in users] + [normalise_key(t) for t in others]
    close = [(s, i, j) for s, i, j in similar_pairs(keys, 0.6) if i < len(users)]
    assert close == [], [(users[i].text, (keys[j])) for _, i, j in close]


def _sources() -> list[Path]:
    roots = [ROOT / "layers", ROOT / "functions", ROOT / "infra", ROOT / "cli"]
    files = [p for r in roots for p in r.rglob("*.py")]
    files += [p for p in (ROOT / "model_export").glob("*.py") if p.name not in ("loop.py", "demo_report.py")]
    return files


def test_nothing_but_the_simulation_and_the_measurement_names_the_ground_truth() -> None:
    """Training, export, ingestion, serving and the learner never name the ground-truth files (the
    demo report and the loop's read_truth are the measurement's and the simulated users' side)."""
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        strings = [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
        ]
        for name in ("song_intent", "data/loop", "users.tsv"):
            assert not any(name in s for s in strings), f"{path.relative_to(ROOT)} names {name}"
    tree = ast.parse((ROOT / "model_export" / "learn.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any("loop" in (m or "") for m in imported)


def _record_ground_truth_opens(log: list[str]) -> None:
    def hook(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], str | Path) and Path(args[0]).name in GROUND_TRUTH:
            log.append("".join(traceback.format_stack(limit=12)))

    sys.addaudithook(hook)


@pytest.mark.integration
@pytest.mark.train
def test_quick_loop_end_to_end_resumes_and_keeps_the_ground_truth_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from model_export import loop

    opens: list[str] = []
    _record_ground_truth_opens(opens)
    out, base = tmp_path / "run", tmp_path / "base"
    args = [
        "--quick",
        "--no-progress",
        "--out",
        str(out),
        "--base",
        str(base),
        "--json",
        str(tmp_path / "r.json"),
    ]
    assert loop.main(args) == 0
    result = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    r0, r1 = result["rounds"]
    assert r0["round"] == 0 and r1["round"] == 1
    assert r1["model_version"] != r0["model_version"] and r1["model_version"].startswith("loop-")
    assert r1["users"] == 12 and r1["feedback_rows"] == r1["answers"] > 0
    for r in (r0, r1):
        assert r["eval_ci"][0] <= r["eval_satisfaction"] <= r["eval_ci"][1]
        assert 0 <= r["songs_as_meant"] <= 300
    assert (out / "loop.png").stat().st_size > 0
    assert (out / "round-1" / "bundle" / "manifest.json").is_file()
    # The ground truth was opened by read_truth only: the learner, the export, ingestion and serving
    # ran in between and never touched it.
    assert opens and all("read_truth" in stack for stack in opens), opens

    # Re-running resumes: nothing new is simulated, no feedback is duplicated.
    opens.clear()
    assert loop.main(args) == 0
    again = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [r["feedback_rows"] for r in again["rounds"]] == [0, r1["feedback_rows"]]
    assert all("read_truth" in stack for stack in opens)

    # The control arm: the same round with learning off serves the starting bundle throughout.
    control = tmp_path / "control.json"
    assert (
        loop.main(
            [
                "--quick",
                "--control",
                "--no-progress",
                "--out",
                str(tmp_path / "c"),
                "--base",
                str(base),
                "--json",
                str(control),
            ]
        )
        == 0
    )
    c0, c1 = json.loads(control.read_text(encoding="utf-8"))["rounds"]
    assert c1["model_version"] == c0["model_version"] == r0["model_version"]
    assert c1["feedback_rows"] > 0

    # A round whose training fails stops the loop; the round's export copy and round 0 stay.
    def failing(*_: object, **__: object) -> None:
        raise ModelExportError("training failed (test)")

    monkeypatch.setattr(loop, "retrain", failing)
    failed = tmp_path / "failed"
    with pytest.raises(ModelExportError, match="training failed"):
        loop.main(["--quick", "--no-progress", "--out", str(failed), "--base", str(base)])
    state = json.loads((failed / "loop.json").read_text(encoding="utf-8"))
    assert [r["round"] for r in state["rounds"]] == [0]
    assert any((failed / "round-1" / "feedback").rglob("*.jsonl.gz"))


def test_bad_users_file_stops_before_any_round(tmp_path: Path) -> None:
    from model_export import loop

    bad = tmp_path / "users.tsv"
    bad.write_text("feeling\tsecond\ttext\nglee\t\t좋아\n", encoding="utf-8")
    with pytest.raises(ModelExportError, match=r"users.tsv:2: unknown label"):
        loop.main(
            ["--quick", "--users", str(bad), "--out", str(tmp_path / "run"), "--base", str(tmp_path / "b")]
        )
    assert not (tmp_path / "run").exists() and not (tmp_path / "b").exists()
