"""Ingestion benchmark: chunks/s and songs/s of the scoring pipeline, batch sizes compared, peak memory.

    python -m bench.ingest [--songs 300] [--batch-sizes 1,8,32,64] [--full] [--quick] [--skip-koelectra]
    python -m bench.ingest --split-only [--split-lines 1000000]

For each bundle (the demo bundle, and the KoELECTRA-Small-shaped random-weight INT8 bundle), in a fresh
process per bundle and thread count (so its peak RSS is its own):

- ``SongScorer.score`` over a synthetic catalog of about 10 chunks a song (lines of the demo catalog's
  original lyrics), for each batch size. The baseline, measured in the same process, is batch size 1:
  one chunk per onnxruntime call, as a notebook loop would do. Also: batches of 32 in catalog order
  (no length sorting), to show what sorting by token count saves in padding.
- with 2 threads (this machine) and 1 thread (what one Lambda vCPU gives a worker).
- end to end through ``ingest_file`` into SongsTable on a moto server (moto's write cost is not
  DynamoDB's; the row says how much of the time the writes take here).

- ``split_catalog`` (the splitter's work: check every line, pack messages) over synthetic catalog lines
  with an in-memory sender, in a fresh process (its peak RSS is the song ids it keeps for duplicates):
  what the splitter's CPU time is for a 1,000,000-song upload; the S3 read and the SendMessageBatch
  calls are not in it. ``--split-only`` runs only this part.

From the measured per-chunk cost it projects the original's 7,500-song catalog (~10 chunks a song) on
this machine and a 1,000,000-song catalog through the SQS fan-out (see docs/ingestion.md). ``--full``
also scores a real 7,500-song synthetic catalog on this machine instead of only projecting it.
No GPU is used or measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import CACHE, DEMO_BUNDLE, REGION, ROOT

DEMO_CATALOG = ROOT / "data" / "demo" / "songs.jsonl"

CHUNKS_PER_SONG = 10  # the original catalog: about 10 chunks a song
ORIGINAL_SONGS = 7_500
GOAL_7500_S = 600.0
MILLION = 1_000_000
# The fan-out as template.yaml configures it: songs per SQS message, messages per Lambda invocation.
SONGS_PER_MESSAGE = 25
MESSAGES_PER_INVOCATION = 10
LAMBDA_LIMIT_S = 900
# DynamoDB: one partition takes ~1,000 write units/s; a SongsTable item (< 1 KB) is one unit, and one
# model version is one partition key. Adaptive capacity may split it for heat; this is the safe bound.
PARTITION_WRITES_PER_S = 1_000


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def synthetic_lyrics(
    songs: int, chunks_per_song: int = CHUNKS_PER_SONG, lines_per_chunk: int = 4
) -> list[str]:
    """Lyrics of ``songs`` songs, each ``chunks_per_song`` chunks long, cut from the demo catalog's
    distinct lines (original text) so that nothing collapses as a repeat."""
    lines: list[str] = []
    seen: set[str] = set()
    with open(DEMO_CATALOG, encoding="utf-8") as fh:
        for raw in fh:
            for line in json.loads(raw)["lyrics"].splitlines():
                if line.strip() and line not in seen:
                    seen.add(line)
                    lines.append(line.strip())
    per_song = chunks_per_song * lines_per_chunk
    return ["\n".join(lines[(i * per_song + j) % len(lines)] for j in range(per_song)) for i in range(songs)]


def koelectra_small_bundle() -> Path:
    """The KoELECTRA-Small-shaped random-weight INT8 bundle, built once under .cache/bench/ (shared
    with bench.serving); torch is imported only when it has to be built."""
    from moodtune.emotion.bundle import BundleError, load_bundle

    path = CACHE / "koelectra-small"
    try:
        if load_bundle(path).manifest.get("source", {}).get("random_shape") == {
            "shape": "koelectra-small",
            "seed": 0,
        }:
            return path
    except BundleError:
        pass
    from model_export.shapes import build_random_bundle

    return build_random_bundle(path, shape="koelectra-small")


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork + exec, so a
    child would report its parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------- the splitter


def split_child(lines: int) -> dict[str, Any]:
    """``split_catalog`` over ``lines`` synthetic songs of ~10 chunks (generated as they are read),
    every message body handed to a sender that only counts them."""
    from moodtune.catalog.fanout import split_catalog

    lyrics = synthetic_lyrics(64)
    titles = ["비 오는 날의 노래", "햇살", "그리운 너에게", "밤의 골목"]

    def catalog() -> Any:
        for i in range(lines):
            song = {
                "song_id": f"song-{i:07d}",
                "title": titles[i % len(titles)],
                "artist": f"가수 {i % 997}",
                "lyrics": lyrics[i % len(lyrics)],
                "year": 1990 + i % 35,
                "genre": "ballad",
                "external_ids": {"isrc": f"KRA40{i:07d}"},
            }
            yield (json.dumps(song, ensure_ascii=False) + "\n").encode("utf-8")

    sent = {"calls": 0, "bytes": 0}

    def send(bodies: list[str]) -> None:
        sent["calls"] += 1
        sent["bytes"] += sum(len(b.encode("utf-8")) for b in bodies)

    rss_before = peak_rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    report = split_catalog(catalog(), "s3://moodtune-catalog/catalogs/bench.jsonl", send)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "lines": lines,
        "songs": report.songs,
        "skipped": len(report.rejected),
        "messages": report.messages,
        "send_calls": sent["calls"],
        "mean_message_kb": sent["bytes"] / max(report.messages, 1) / 1024,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "lines_per_s": lines / seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_growth_mb": peak_rss_mb() - rss_before,
    }


def run_split(lines: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.ingest", "--split-child", str(lines)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"split benchmark failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# IngestSplitterFunction's MemorySize: Lambda gives 1,769 MB one vCPU, and CPU in proportion below it.
SPLITTER_MEMORY_MB = 1024
LAMBDA_MB_PER_VCPU = 1769


def print_split(r: dict[str, Any]) -> None:
    cpu_per_million = r["cpu_seconds"] / r["lines"] * MILLION
    on_lambda = cpu_per_million / (SPLITTER_MEMORY_MB / LAMBDA_MB_PER_VCPU)
    calls = math.ceil(r["messages"] / r["lines"] * MILLION / 10)  # 10 messages per SendMessageBatch
    print("\n## The splitter: split_catalog (in-memory sender; no S3 read, no SQS calls)\n")
    print(
        table(
            ["lines", "messages", "KiB/message", "wall s", "CPU s", "lines/s (CPU)", "peak RSS MB"],
            [
                [
                    r["lines"],
                    r["messages"],
                    f"{r['mean_message_kb']:.1f}",
                    f"{r['seconds']:.1f}",
                    f"{r['cpu_seconds']:.1f}",
                    f"{r['lines'] / r['cpu_seconds']:,.0f}",
                    f"{r['peak_rss_mb']:.0f} (+{r['rss_growth_mb']:.0f} while splitting)",
                ]
            ],
        )
    )
    print(
        f"\n1,000,000 lines: {cpu_per_million / 60:.1f} min of CPU on one core here; at "
        f"{SPLITTER_MEMORY_MB:,} MB a Lambda gets {SPLITTER_MEMORY_MB / LAMBDA_MB_PER_VCPU:.2f} vCPU: "
        f"~{on_lambda / 60:.1f} min, plus the S3 read and {calls:,} SendMessageBatch calls (not "
        "measured here); the limit is 15 min."
    )


# ---------------------------------------------------------------- the child: one bundle, one thread count


def _time(fn: Any, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def child(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from moodtune.catalog.ingest import SongScorer
    from moodtune.catalog.lyrics import prepare_lyrics
    from moodtune.emotion.classifier import EmotionClassifier

    rss_start = peak_rss_mb()
    classifier = EmotionClassifier.from_bundle(args.bundle, threads=args.threads)
    rss_loaded = peak_rss_mb()
    lyrics = synthetic_lyrics(args.songs)
    chunks = [c for text in lyrics for c in prepare_lyrics(text).chunks]
    tokens = classifier.tokenize(chunks)["attention_mask"].sum(axis=1)
    SongScorer(classifier, batch_size=32).score(lyrics[:4])  # warm-up
    rows = []
    # Ascending batch sizes: the process's peak RSS after each row is that batch size's peak.
    for batch in sorted(args.batch_sizes):
        scorer = SongScorer(classifier, batch_size=batch)
        seconds = _time(lambda s=scorer: s.score(lyrics), args.repeats)
        rows.append({"batch": batch, "sorted": True, "seconds": seconds, "peak_rss_mb": peak_rss_mb()})

    def unsorted(batch: int = 32) -> None:
        for start in range(0, len(chunks), batch):
            classifier.predict(chunks[start : start + batch])

    rows.append(
        {"batch": 32, "sorted": False, "seconds": _time(unsorted, args.repeats), "peak_rss_mb": peak_rss_mb()}
    )
    for row in rows:
        row["chunks_per_s"] = len(chunks) / row["seconds"]
        row["songs_per_s"] = len(lyrics) / row["seconds"]
        row["ms_per_chunk"] = 1000 * row["seconds"] / len(chunks)

    result: dict[str, Any] = {
        "bundle": str(args.bundle),
        "model_version": classifier.model_version,
        "threads": args.threads,
        "songs": len(lyrics),
        "chunks": len(chunks),
        "tokens_mean": float(np.mean(tokens)),
        "rows": rows,
        "rss_start_mb": rss_start,
        "rss_loaded_mb": rss_loaded,
    }
    if args.end_to_end:
        result["end_to_end"] = end_to_end(classifier, lyrics, max(args.batch_sizes))
    if args.full:
        full_lyrics = synthetic_lyrics(ORIGINAL_SONGS)
        scorer = SongScorer(classifier, batch_size=max(args.batch_sizes))
        start = time.perf_counter()
        for i in range(0, len(full_lyrics), 128):
            scorer.score(full_lyrics[i : i + 128])
        result["full"] = {"songs": len(full_lyrics), "seconds": time.perf_counter() - start}
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def end_to_end(classifier: Any, lyrics: list[str], batch: int) -> dict[str, float]:
    """The whole pipeline (parse, hash, skip check, score, batch_writer) into a moto server table."""
    import boto3

    from infra.local.aws import create_tables, start_moto_server
    from moodtune.catalog.ingest import SongScorer, ingest_file

    server = start_moto_server()
    try:
        resource_ = boto3.resource(
            "dynamodb",
            endpoint_url=server.endpoint_url,
            region_name=REGION,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        create_tables(ROOT / "template.yaml", resource_.meta.client, {"SongsTable": "bench-songs"})
        table_ = resource_.Table("bench-songs")
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as fh:
            for i, text in enumerate(lyrics):
                song = {"song_id": f"b{i:06d}", "title": f"제목 {i}", "artist": "벤치", "lyrics": text}
                fh.write(json.dumps(song, ensure_ascii=False) + "\n")
        scorer = SongScorer(classifier, batch_size=batch)
        first = ingest_file(scorer, table_, fh.name)
        rerun = ingest_file(scorer, table_, fh.name)
        os.unlink(fh.name)
    finally:
        server.stop()
    return {
        "seconds": first.seconds,
        "songs_per_s": first.written / first.seconds,
        "chunks_per_s": first.chunks / first.seconds,
        "rerun_seconds": rerun.seconds,
        "rerun_unchanged": rerun.unchanged,
    }


# ---------------------------------------------------------------- the parent: run children, print


def run_child(bundle: Path, threads: int, args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.ingest",
        "--child",
        str(bundle),
        "--threads",
        str(threads),
        "--songs",
        str(args.songs),
        "--repeats",
        str(args.repeats),
        "--batch-sizes",
        ",".join(map(str, args.batch_sizes)),
        *extra,
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def projections(ms_chunk_2t: float, ms_chunk_1t: float) -> dict[str, Any]:
    """The 7,500-song catalog on this machine, and 1,000,000 songs through the SQS fan-out."""
    chunks_7500 = ORIGINAL_SONGS * CHUNKS_PER_SONG
    seconds_7500 = chunks_7500 * ms_chunk_2t / 1000
    s_per_song_1t = CHUNKS_PER_SONG * ms_chunk_1t / 1000
    message_s = SONGS_PER_MESSAGE * s_per_song_1t
    invocation_s = MESSAGES_PER_INVOCATION * message_s
    songs_per_worker_s = 1 / s_per_song_1t
    # Enough workers to reach DynamoDB's single-partition write rate, no more: more would only be throttled.
    workers = math.ceil(PARTITION_WRITES_PER_S / songs_per_worker_s)
    rate = min(workers * songs_per_worker_s, PARTITION_WRITES_PER_S)
    return {
        "chunks_7500": chunks_7500,
        "seconds_7500": seconds_7500,
        "goal_7500_met": seconds_7500 < GOAL_7500_S,
        "s_per_song_1t": s_per_song_1t,
        "message_s": message_s,
        "invocation_s": invocation_s,
        "invocation_within_limit": invocation_s < LAMBDA_LIMIT_S,
        "songs_per_worker_s": songs_per_worker_s,
        "workers": workers,
        "million_s": MILLION / rate,
        "million_compute_s": MILLION * s_per_song_1t,
        "messages": math.ceil(MILLION / SONGS_PER_MESSAGE),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", type=int, default=300, help="songs of ~10 chunks per measurement")
    parser.add_argument(
        "--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32, 64]
    )
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs per row")
    parser.add_argument("--full", action="store_true", help="also score a real 7,500-song catalog")
    parser.add_argument("--quick", action="store_true", help="100 songs, one run per row")
    parser.add_argument("--skip-koelectra", action="store_true", help="only the demo bundle")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--end-to-end", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--split-only", action="store_true", help="only time split_catalog")
    parser.add_argument("--split-lines", type=int, default=MILLION, help="catalog lines to split")
    parser.add_argument("--split-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.split_child:
        print(json.dumps(split_child(args.split_child)))
        return 0
    if args.split_only:
        print(f"# split_catalog, {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        print_split(run_split(args.split_lines))
        return 0
    if args.quick:
        args.songs, args.repeats = min(args.songs, 100), 1
    if args.child:
        args.bundle = args.child
        print(json.dumps(child(args)))
        return 0

    bundles = [("demo", DEMO_BUNDLE)]
    if not args.skip_koelectra:
        print("building/reusing the KoELECTRA-Small-shaped bundle under .cache/bench ...", file=sys.stderr)
        bundles.append(("koelectra-small (random weights)", koelectra_small_bundle()))

    load_before = os.getloadavg()[0]
    results = []
    for label, path in bundles:
        for threads in (2, 1):
            extra = ["--end-to-end"] if threads == 2 else []
            if args.full and threads == 2 and label.startswith("koelectra"):
                extra.append("--full")
            print(f"measuring {label}, {threads} thread(s) ...", file=sys.stderr)
            result = run_child(path, threads, args, extra)
            result["label"] = label
            results.append(result)

    print(
        f"# moodtune ingestion benchmark\n\nmachine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {args.songs:,} synthetic songs of ~{CHUNKS_PER_SONG} chunks "
        f"(4 lines each) per row, best of {args.repeats}; load average before/after: {load_before:.1f}/"
        f"{os.getloadavg()[0]:.1f} (other work on the machine slows the 2-thread rows most); "
        "GPU: not measured (none in this session)\n"
    )
    print("## Scoring throughput (SongScorer: chunk, classify in batches, average)\n")
    rows = []
    for r in results:
        base = (
            next(row for row in r["rows"] if row["batch"] == 1 and row["sorted"])
            if 1 in args.batch_sizes
            else None
        )
        for row in r["rows"]:
            rows.append(
                [
                    r["label"],
                    r["threads"],
                    row["batch"] if row["sorted"] else f"{row['batch']} unsorted",
                    row["chunks_per_s"],
                    row["songs_per_s"],
                    row["ms_per_chunk"],
                    f"{row['chunks_per_s'] / base['chunks_per_s']:.2f}x" if base else "-",
                    row["peak_rss_mb"],
                ]
            )
    headers = ["bundle", "threads", "batch", "chunks/s", "songs/s", "ms/chunk", "vs batch 1", "peak RSS MB"]
    print(table(headers, rows))
    print(
        "\npeak RSS: the whole process (Python, onnxruntime, boto3, the model) after the row; rows run"
        " in ascending batch size, so each row's figure is that batch size's peak."
    )

    print("\n## The end-to-end pipeline (2 threads, largest batch, moto server)\n")
    print(
        table(
            ["bundle", "tokens/chunk", "RSS with the session MB", "end-to-end songs/s", "re-run s"],
            [
                [
                    r["label"],
                    r["tokens_mean"],
                    r["rss_loaded_mb"],
                    r["end_to_end"]["songs_per_s"],
                    r["end_to_end"]["rerun_seconds"],
                ]
                for r in results
                if "end_to_end" in r
            ],
        )
    )
    print("\nre-run: the same catalog again; every song is unchanged (content hash), nothing is scored.\n")

    target = next(
        (r for r in results if r["label"].startswith("koelectra") and r["threads"] == 2), results[0]
    )
    target_1t = next(r for r in results if r["label"] == target["label"] and r["threads"] == 1)
    best_2t = min((row for row in target["rows"] if row["sorted"]), key=lambda row: row["ms_per_chunk"])
    best_1t = min((row for row in target_1t["rows"] if row["sorted"]), key=lambda row: row["ms_per_chunk"])
    p = projections(best_2t["ms_per_chunk"], best_1t["ms_per_chunk"])
    print(
        f"\n## Projections from {target['label']} (best batch: {best_2t['batch']} with 2 threads, "
        f"{best_1t['batch']} with 1)\n"
    )
    lines = [
        ["per-chunk cost, 2 threads (this machine)", f"{best_2t['ms_per_chunk']:.2f} ms"],
        ["per-chunk cost, 1 thread (one Lambda vCPU)", f"{best_1t['ms_per_chunk']:.2f} ms"],
        [
            f"7,500 songs x {CHUNKS_PER_SONG} chunks on this machine (goal < 10 min)",
            f"{p['seconds_7500'] / 60:.1f} min ({'met' if p['goal_7500_met'] else 'NOT met'})",
        ],
    ]
    if "full" in target:
        full = target["full"]
        lines.append(
            [f"measured: {full['songs']:,} songs scored on this machine", f"{full['seconds'] / 60:.1f} min"]
        )
    lines += [
        [f"one SQS message ({SONGS_PER_MESSAGE} songs) on one worker", f"{p['message_s']:.1f} s"],
        [
            f"one invocation ({MESSAGES_PER_INVOCATION} messages; Lambda limit {LAMBDA_LIMIT_S} s)",
            f"{p['invocation_s']:.0f} s ({'within' if p['invocation_within_limit'] else 'OVER'})",
        ],
        ["one worker", f"{p['songs_per_worker_s']:.1f} songs/s"],
        [
            f"workers to reach {PARTITION_WRITES_PER_S:,} writes/s (one DynamoDB partition)",
            f"{p['workers']}",
        ],
        ["1,000,000 songs: messages", f"{p['messages']:,}"],
        ["1,000,000 songs: worker compute in all", f"{p['million_compute_s'] / 3600:.1f} h"],
        [f"1,000,000 songs with {p['workers']} workers", f"{p['million_s'] / 60:.0f} min"],
    ]
    print(table(["", ""], lines))
    split = run_split(args.split_lines if not args.quick else 20_000)
    print_split(split)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "projections": p, "split": split}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
