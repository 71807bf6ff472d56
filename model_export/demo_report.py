"""What the demo bundle does with the demo data: the figures and tables the README quotes.

    python -m model_export.demo_report            # after `make demo-model`
    python -m model_export.demo_report --json
    python -m model_export.demo_report --journeys   # diverse lists (the MMR lambda), metrics, journeys

It scores ``data/demo/songs.jsonl`` with the bundle exactly as ingestion does (the bundle's chunking,
mean), compares each song's dominant emotion with the one its writer meant (``song_intent.tsv``), also
for 1 to 4 lines per chunk (how the bundle's ``lyrics.lines_per_chunk`` was chosen), lists the
reference cases the model gets wrong, and recommends songs for one typical text per emotion with the
serving code (``distribution`` mode). Nothing here needs AWS or the local stack.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from model_export.errors import ModelExportError, run_cli
from moodtune.catalog.ingest import CatalogEntry, SongScorer, read_catalog_file, scored_song
from moodtune.catalog.lyrics import LyricsOptions
from moodtune.catalog.songs import Catalog
from moodtune.emotion.classifier import EmotionClassifier
from moodtune.labels import LABELS
from moodtune.recommend.diversity import intra_list_distance
from moodtune.recommend.journeys import plan_journey, target_distribution
from moodtune.recommend.ranking import recommend
from moodtune.similarity import METRICS, get_metric

BUNDLE = Path("models/demo")
CATALOG = Path("data/demo/songs.jsonl")
INTENT = Path("data/demo/song_intent.tsv")
REFERENCE = Path("data/demo/reference.tsv")
REFERENCE_MIXED = Path("data/demo/reference_mixed.tsv")

# Input the model cannot read (no Korean), written for this report: none may get a confident label.
NOT_KOREAN = (
    "I am so happy today",
    "This is the worst day of my life",
    "今日はとても楽しかった",
    "今天我很难过",
    "1234567890",
    "https://example.com/today",
    "asdfjkl;asdf",
    "ㅁㄴㅇㄹㅁㄴㅇㄹ",
    "Je suis très fatigué",
    "!!!???...",
)

# One typical text per emotion, written for this report (none is in the corpus or reference set).
SAMPLE_TEXTS = (
    "드디어 월급날!! 오늘은 치킨이다 ㅎㅎ",
    "헤어진 지 한 달인데 아직도 네 생각뿐이야 ㅠㅠ",
    "팀장님이 내 아이디어를 자기 거라고 발표함 진짜 열받아",
    "내일 건강검진 결과 나오는데 너무 불안해",
    "헐 10년 만에 초등학교 친구를 지하철에서 만남 대박",
    "옆자리 사람 쩝쩝거리면서 먹는 소리 진짜 역겹다",
    "내일 오전 10시 회의, 자료는 공유폴더에 올려둠",
)


def read_tsv(path: Path, columns: tuple[str, str]) -> list[tuple[str, str]]:
    """Rows of a two-column TSV with a header naming ``columns``."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except OSError as exc:
        raise ModelExportError(f"{path}: cannot read ({exc.strerror}).") from exc
    if rows and not set(columns) <= set(rows[0]):
        raise ModelExportError(f"{path}: expected the columns {columns}, found {list(rows[0])}.")
    return [(row[columns[0]], row[columns[1]]) for row in rows]


def score_catalog(
    classifier: EmotionClassifier, catalog: Path, lines_per_chunk: int | None = None
) -> Catalog:
    """The demo catalog scored as ``moodtune ingest`` scores it (the bundle's chunking by default)."""
    entries = [p for p in read_catalog_file(catalog) if isinstance(p, CatalogEntry)]
    lyrics = LyricsOptions(lines_per_chunk=lines_per_chunk or classifier.lines_per_chunk)
    scores = SongScorer(classifier, lyrics).score([e.song.lyrics for e in entries])
    songs = tuple(scored_song(e.song, s) for e, s in zip(entries, scores, strict=True) if s)
    return Catalog(model_version=classifier.model_version, songs=songs)


def reference_misses(classifier: EmotionClassifier, reference: Path) -> dict[str, Any]:
    """Accuracy on the reference cases and every miss with its probabilities."""
    rows = read_tsv(reference, ("label", "text"))
    probs = classifier.predict([text for _, text in rows])
    misses = [
        {"text": text, "gold": gold, "predicted": LABELS[int(p.argmax())], "p": round(float(p.max()), 3)}
        for (gold, text), p in zip(rows, probs, strict=True)
        if LABELS[int(p.argmax())] != gold
    ]
    return {"n": len(rows), "accuracy": round(1 - len(misses) / max(len(rows), 1), 4), "misses": misses}


def intent_agreement(catalog: Catalog, intent: Path) -> dict[str, Any]:
    """How often a song's scored dominant emotion is the one its writer meant, and what it became."""
    meant = dict(read_tsv(intent, ("song_id", "intended_dominant")))
    pairs = [(meant[s.song_id], s.dominant) for s in catalog.songs if s.song_id in meant]
    matched = sum(a == b for a, b in pairs)
    return {
        "songs": len(pairs),
        "matched": matched,
        "share": round(matched / max(len(pairs), 1), 4),
        "scored_dominant": dict(Counter(b for _, b in pairs)),
        "by_intent": {
            label: {"n": sum(a == label for a, _ in pairs), "matched": sum(a == b == label for a, b in pairs)}
            for label in LABELS
        },
    }


def sample_recommendations(
    classifier: EmotionClassifier, catalog: Catalog, intent: Path, top: int
) -> list[dict[str, Any]]:
    """Top songs (distribution mode) for each sample text, with each song's scored and meant emotion."""
    meant = dict(read_tsv(intent, ("song_id", "intended_dominant")))
    out = []
    for text, scores in zip(SAMPLE_TEXTS, classifier.predict(list(SAMPLE_TEXTS)), strict=True):
        matches = recommend(catalog, np.asarray(scores), limit=top)
        out.append(
            {
                "text": text,
                "dominant": LABELS[int(scores.argmax())],
                "p": round(float(scores.max()), 2),
                "songs": [
                    {
                        "song_id": m.song.song_id,
                        "title": m.song.title,
                        "artist": m.song.artist,
                        "dominant": m.song.dominant,
                        "meant": meant.get(m.song.song_id, "?"),
                    }
                    for m in matches
                ],
            }
        )
    return out


def distribution_figures(
    classifier: EmotionClassifier, catalog: Catalog, intent: Path, reference: Path, reference_mixed: Path
) -> dict[str, Any]:
    """Whether the distribution means what it says (issue: soft labels and calibration).

    * single-feeling reference texts: accuracy, ECE (10 bins), mean top probability;
    * mixed reference texts: both intended feelings the two strongest, the mean probability of the
      weaker one, and whether the top-5 songs (distribution vs dominant mode) include songs meant
      for each of the two feelings (``song_intent.tsv``);
    * every reference text: how often the two modes return the same five songs;
    * text without Korean: how many get a label above 0.5 (the API refuses them with a 422).
    """
    from model_export.calibration import ece, mixed_figures
    from model_export.datasets import read_plain
    from moodtune.emotion.readable import UnreadableText, read

    meant = dict(read_tsv(intent, ("song_id", "intended_dominant")))
    single = read_plain(reference)
    mixed = read_plain(reference_mixed) if reference_mixed.is_file() else []
    single_probs = classifier.predict([e.text for e in single])
    gold = np.array([LABELS.index(e.label) for e in single])
    out: dict[str, Any] = {
        "single": {
            "n": len(single),
            "accuracy": round(float((single_probs.argmax(1) == gold).mean()), 4),
            "ece": round(ece(single_probs, gold), 4),
            "mean_top_probability": round(float(single_probs.max(1).mean()), 4),
        }
    }
    same_lists = 0
    texts = single + mixed
    all_probs = classifier.predict([e.text for e in texts]) if texts else np.zeros((0, len(LABELS)))
    for probs in all_probs:
        lists = [
            [m.song.song_id for m in recommend(catalog, probs, limit=5, mode=mode)]
            for mode in ("distribution", "dominant")
        ]
        same_lists += lists[0] == lists[1]
    out["same_five_songs_in_both_modes"] = {"texts": len(texts), "same": same_lists}
    if mixed:
        probs = all_probs[len(single) :]
        targets = np.array([e.target for e in mixed])
        figures = mixed_figures(probs, targets)
        covered = {"distribution": 0, "dominant": 0}
        for e, p in zip(mixed, probs, strict=True):
            feelings = {lb for lb, q in zip(LABELS, e.target, strict=True) if q > 0}
            for mode in covered:
                songs = recommend(catalog, p, limit=5, mode=mode)
                covered[mode] += feelings <= {meant.get(m.song.song_id) for m in songs}
        out["mixed"] = {**figures, "top5_meant_for_both_feelings": covered}
    readable_confident = 0
    for text in NOT_KOREAN:
        try:
            reading = read(text)
        except UnreadableText:
            continue
        scores = reading.scores if reading.scores is not None else classifier.predict_one(text)
        readable_confident += float(max(scores)) > 0.5
    out["not_korean"] = {"texts": len(NOT_KOREAN), "label_above_half": readable_confident}
    return out


def build_report(
    bundle: Path,
    catalog: Path,
    intent: Path,
    reference: Path,
    top: int,
    reference_mixed: Path = REFERENCE_MIXED,
) -> dict[str, Any]:
    """Every figure of the report, as one JSON-ready mapping."""
    classifier = EmotionClassifier.from_bundle(bundle)
    songs = score_catalog(classifier, catalog)
    return {
        "temperature": classifier.temperature,
        "distributions": distribution_figures(classifier, songs, intent, reference, reference_mixed),
        "model_version": classifier.model_version,
        "lines_per_chunk": classifier.lines_per_chunk,
        "reference": reference_misses(classifier, reference),
        "catalog": intent_agreement(songs, intent),
        "matched_by_lines_per_chunk": {
            n: intent_agreement(score_catalog(classifier, catalog, n), intent)["matched"]
            for n in (1, 2, 3, 4)
        },
        "samples": sample_recommendations(classifier, songs, intent, top),
    }


def print_report(report: dict[str, Any], console: Console) -> None:
    """The report as rich tables."""
    ref = report["reference"]
    console.print(f"[bold]{report['model_version']}[/]: reference accuracy {ref['accuracy']} (n={ref['n']})")
    misses = Table("gold", "predicted (p)", "text", title="Reference cases the model gets wrong")
    for m in ref["misses"]:
        misses.add_row(m["gold"], f"{m['predicted']} ({m['p']})", m["text"])
    console.print(misses)
    cat = report["catalog"]
    console.print(
        f"catalog: scored dominant = meant for {cat['matched']} of {cat['songs']} songs "
        f"({cat['share']:.0%}); "
        f"scored dominants: {cat['scored_dominant']}"
    )
    by_intent = Table("meant", "songs", "scored the same", title="Songs by the emotion their writer meant")
    for label, row in cat["by_intent"].items():
        by_intent.add_row(label, str(row["n"]), str(row["matched"]))
    console.print(by_intent)
    console.print(
        f"songs scored as meant, by lyric lines per chunk (the bundle's: {report['lines_per_chunk']}): "
        + ", ".join(f"{n}: {m}" for n, m in report["matched_by_lines_per_chunk"].items())
    )
    samples = Table(
        "text", "dominant (p)", "songs (scored; meant)", title="Recommendations, distribution mode"
    )
    for s in report["samples"]:
        songs = ", ".join(f"{x['title']} — {x['artist']} ({x['dominant']}; {x['meant']})" for x in s["songs"])
        samples.add_row(s["text"], f"{s['dominant']} ({s['p']})", songs)
    console.print(samples)
    d = report["distributions"]
    table = Table("measure", "figure", title=f"Distributions (temperature {report['temperature']})")
    table.add_row(
        "single-feeling reference: accuracy / ECE / mean top p",
        f"{d['single']['accuracy']} / {d['single']['ece']} / {d['single']['mean_top_probability']}",
    )
    if "mixed" in d:
        m = d["mixed"]
        table.add_row(
            "mixed reference: both feelings the two strongest", f"{m['both_top2']:.0%} (n={m['n']})"
        )
        table.add_row("mixed reference: mean p of the weaker feeling", f"{m['second_mean']}")
        both = m["top5_meant_for_both_feelings"]
        table.add_row(
            "mixed: top-5 holds songs meant for both feelings (distribution / dominant)",
            f"{both['distribution']} / {both['dominant']} of {m['n']}",
        )
    same = d["same_five_songs_in_both_modes"]
    table.add_row(
        "reference texts whose two modes give the same five songs", f"{same['same']} of {same['texts']}"
    )
    nk = d["not_korean"]
    table.add_row(
        "text without Korean answered with a label above 0.5", f"{nk['label_above_half']} of {nk['texts']}"
    )
    console.print(table)


LAMBDAS = (1.0, 0.9, 0.8, 0.7, 0.65, 0.6, 0.5)
EXAMPLES = (
    ("헤어진 지 한 달인데 아직도 네 생각뿐이야 ㅠㅠ", "joy"),
    ("팀장님이 내 아이디어를 자기 거라고 발표함 진짜 열받아", "neutral"),
    ("내일 건강검진 결과 나오는데 너무 불안해", "joy"),
)


def _texts(reference: Path) -> list[str]:
    return [text for _, text in read_tsv(reference, ("label", "text"))] + list(SAMPLE_TEXTS)


def diversity_sweep(classifier: EmotionClassifier, catalog: Catalog, reference: Path) -> dict[str, Any]:
    """Lists of 5 for every reference and sample text at each MMR lambda (artist spread on), against
    the plain ranking: mean similarity lost, intra-list distance gained, lists repeating an artist."""
    texts = _texts(reference)
    probs = classifier.predict(texts)
    cosine = get_metric("cosine")
    rows = []
    plain_lists = [recommend(catalog, p, limit=5, mmr_lambda=1.0, artist_spread=False) for p in probs]
    plain_sim = float(np.mean([np.mean([m.similarity for m in ms]) for ms in plain_lists]))
    plain_div = float(
        np.mean([intra_list_distance(catalog.matrix[_rows(catalog, ms)], cosine) for ms in plain_lists])
    )
    rows.append(
        {
            "lambda": "plain",
            "similarity": plain_sim,
            "diversity": plain_div,
            "repeated_artist_lists": sum(_repeats(ms) for ms in plain_lists),
        }
    )
    for lam in LAMBDAS:
        lists = [recommend(catalog, p, limit=5, mmr_lambda=lam, artist_spread=True) for p in probs]
        sim = float(np.mean([np.mean([m.similarity for m in ms]) for ms in lists]))
        div = float(
            np.mean([intra_list_distance(catalog.matrix[_rows(catalog, ms)], cosine) for ms in lists])
        )
        rows.append(
            {
                "lambda": lam,
                "similarity": sim,
                "similarity_lost_pct": round(100 * (plain_sim - sim) / plain_sim, 3),
                "diversity": div,
                "diversity_gain_pct": round(100 * (div - plain_div) / plain_div, 1),
                "repeated_artist_lists": sum(_repeats(ms) for ms in lists),
                "distinct_dominants": float(np.mean([len({m.song.dominant for m in ms}) for ms in lists])),
            }
        )
    return {"lists": len(texts), "rows": rows}


def repeated_artists(classifier: EmotionClassifier, catalog: Catalog, reference: Path) -> dict[str, Any]:
    """Lists of 5 that repeat an artist, plain and diverse (the defaults), in both modes, for the
    reference texts, the mixed-feeling reference texts (where present) and the sample texts."""
    texts = _texts(reference)
    mixed = reference.with_name(REFERENCE_MIXED.name)
    if mixed.is_file():
        texts += [text for _, text in read_tsv(mixed, ("label", "text"))]
    probs = classifier.predict(texts)
    out: dict[str, Any] = {"texts": len(texts)}
    for mode in ("distribution", "dominant"):
        plain = [
            recommend(catalog, p, limit=5, mode=mode, mmr_lambda=1.0, artist_spread=False) for p in probs
        ]
        diverse = [recommend(catalog, p, limit=5, mode=mode) for p in probs]
        out[mode] = {"plain": sum(map(_repeats, plain)), "diverse": sum(map(_repeats, diverse))}
    return out


def _rows(catalog: Catalog, matches: list) -> list[int]:
    return [catalog.index_of(m.song.song_id) for m in matches]


def _repeats(matches: list) -> bool:
    return len({m.song.artist for m in matches}) < len(matches)


def metric_comparison(
    classifier: EmotionClassifier, catalog: Catalog, reference: Path, intent: Path
) -> list[dict[str, Any]]:
    """Cosine against 1 - Jensen-Shannon: how often a top-5 song's scored and meant emotion is the
    text's gold label, and how much the two lists overlap."""
    rows = read_tsv(reference, ("label", "text"))
    meant = dict(read_tsv(intent, ("song_id", "intended_dominant")))
    probs = classifier.predict([text for _, text in rows])
    lists = {name: [recommend(catalog, p, limit=5, metric=name) for p in probs] for name in sorted(METRICS)}
    out = []
    for name, per_text in lists.items():
        songs = [(gold, m) for (gold, _), ms in zip(rows, per_text, strict=True) for m in ms]
        out.append(
            {
                "metric": name,
                "songs_scored_as_gold": round(
                    sum(m.song.dominant == gold for gold, m in songs) / len(songs), 4
                ),
                "songs_meant_as_gold": round(
                    sum(meant.get(m.song.song_id) == gold for gold, m in songs) / len(songs), 4
                ),
                "overlap_with_cosine": round(
                    float(
                        np.mean(
                            [
                                len({m.song.song_id for m in a} & {m.song.song_id for m in b}) / 5
                                for a, b in zip(per_text, lists["cosine"], strict=True)
                            ]
                        )
                    ),
                    4,
                ),
            }
        )
    return out


def journey_figures(classifier: EmotionClassifier, catalog: Catalog, reference: Path) -> dict[str, Any]:
    """Every reference and sample text toward every emotion, both metrics: the journey goals."""
    texts = _texts(reference)
    probs = classifier.predict(texts)
    out: dict[str, Any] = {}
    for name in sorted(METRICS):
        kept = total = strict = stays = unreachable = short = 0
        ratios, largest = [], []
        for p in probs:
            best = recommend(catalog, p, limit=1, metric=name, mmr_lambda=1.0, artist_spread=False)[0]
            for label in LABELS:
                journey = plan_journey(catalog, p, target_distribution(label), length=6, metric=name)
                ratios.append(journey.steps[0].similarity / best.similarity)
                largest.append(journey.largest_step)
                unreachable += not journey.reachable
                short += len(journey.steps) < 6
                if journey.stay:
                    stays += 1
                    continue
                flags = journey.progress_kept
                kept, total = kept + sum(flags), total + len(flags)
                d = [1 - s.target_similarity for s in journey.steps]
                strict += sum(b <= a + 1e-9 for a, b in itertools.pairwise(d))
        out[name] = {
            "journeys": len(probs) * len(LABELS),
            "stay": stays,
            "unreachable": unreachable,
            "shorter_than_asked": short,
            "steps_checked": total,
            "steps_kept_pct": round(100 * kept / max(total, 1), 2),
            "steps_strictly_closer_pct": round(100 * strict / max(total, 1), 2),
            "first_song_ratio_min": round(min(ratios), 4),
            "first_song_ratio_mean": round(float(np.mean(ratios)), 4),
            "largest_step_max": round(max(largest), 4),
            "largest_step_p50": round(float(np.median(largest)), 4),
        }
    examples = []
    for text, target in EXAMPLES:
        p = classifier.predict([text])[0]
        journey = plan_journey(catalog, p, target_distribution(target), length=6)
        examples.append(
            {
                "text": text,
                "from": LABELS[int(p.argmax())],
                "target": target,
                "reachable": journey.reachable,
                "songs": [f"{s.song.title} — {s.song.artist} ({s.song.dominant})" for s in journey.steps],
            }
        )
    out["examples"] = examples
    return out


def build_journey_report(bundle: Path, catalog: Path, intent: Path, reference: Path) -> dict[str, Any]:
    """The figures of diverse lists, the two metrics and journeys on the demo catalog."""
    classifier = EmotionClassifier.from_bundle(bundle)
    songs = score_catalog(classifier, catalog).prepare(*METRICS.values())
    return {
        "model_version": classifier.model_version,
        "diversity": diversity_sweep(classifier, songs, reference),
        "repeated_artists": repeated_artists(classifier, songs, reference),
        "metrics": metric_comparison(classifier, songs, reference, intent),
        "journeys": journey_figures(classifier, songs, reference),
    }


def print_journey_report(report: dict[str, Any], console: Console) -> None:
    """The journey report as rich tables."""
    div = report["diversity"]
    t = Table(
        "MMR lambda",
        "mean similarity",
        "lost %",
        "intra-list distance",
        "gain %",
        "distinct dominants",
        "lists repeating an artist",
        title=f"Lists of 5 for {div['lists']} texts (artist spread on; plain = no diversity)",
    )
    for r in div["rows"]:
        t.add_row(
            str(r["lambda"]),
            f"{r['similarity']:.4f}",
            str(r.get("similarity_lost_pct", "")),
            f"{r['diversity']:.4f}",
            str(r.get("diversity_gain_pct", "")),
            str(round(r.get("distinct_dominants", 0), 2) or ""),
            str(r["repeated_artist_lists"]),
        )
    console.print(t)
    rep = report["repeated_artists"]
    console.print(
        f"lists of 5 repeating an artist, {rep['texts']} texts (reference, mixed reference, samples), "
        "plain → diverse: "
        + "; ".join(
            f"{mode} {rep[mode]['plain']} → {rep[mode]['diverse']}" for mode in ("distribution", "dominant")
        )
    )
    t = Table("metric", "top-5 songs scored as the gold label", "meant as it", "overlap with cosine")
    for r in report["metrics"]:
        t.add_row(
            r["metric"],
            str(r["songs_scored_as_gold"]),
            str(r["songs_meant_as_gold"]),
            str(r["overlap_with_cosine"]),
        )
    console.print(t)
    j = report["journeys"]
    t = Table(
        "figure",
        *[m for m in j if m != "examples"],
        title="Journeys: every text toward every emotion, length 6",
    )
    metrics = [m for m in j if m != "examples"]
    for key in j[metrics[0]]:
        t.add_row(key, *[str(j[m][key]) for m in metrics])
    console.print(t)
    t = Table("text", "from → target", "songs (dominant)", title="Example journeys (cosine)")
    for e in j["examples"]:
        t.add_row(e["text"], f"{e['from']} → {e['target']}", " → ".join(e["songs"]))
    console.print(t)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_export.demo_report", description=__doc__.split("\n")[0])
    p.add_argument("--bundle", type=Path, default=BUNDLE)
    p.add_argument("--catalog", type=Path, default=CATALOG)
    p.add_argument("--intent", type=Path, default=INTENT)
    p.add_argument("--reference", type=Path, default=REFERENCE)
    p.add_argument("--reference-mixed", type=Path, default=REFERENCE_MIXED)
    p.add_argument("--top", type=int, default=2, help="songs per sample text (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument(
        "--journeys", action="store_true", help="diverse lists (MMR lambda), the two metrics, journeys"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.top < 1:
        build_parser().error("--top must be at least 1")
    if args.journeys:
        report = build_journey_report(args.bundle, args.catalog, args.intent, args.reference)
        if args.json:
            print(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            print_journey_report(report, Console(width=200))
        return 0
    report = build_report(
        args.bundle, args.catalog, args.intent, args.reference, args.top, args.reference_mixed
    )
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print_report(report, Console(width=160))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
