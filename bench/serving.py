"""Serving benchmark: warm POST /v1/recommendations through the real handler, similarity at scale,
init time and peak RSS in a fresh process.

    python -m bench.serving [--requests 300] [--songs 7500] [--quick]

Everything is measured in this run on this machine; the goals are ratios against a baseline measured
in the same run (bare model inference), never absolute times asserted in tests:

- handler p50 without the record write <= 1.5 x bare inference p50 (KoELECTRA-Small-shaped bundle);
- similarity + top-k < 1 ms at 7,500 songs and < 15 ms at 1,000,000;
- init in a fresh process (imports + session + 7,500-song catalog) < 1.5 s; peak RSS < 400 MB.

The catalog is built in memory (7,500 synthetic songs), not read through the local endpoint, whose
scans cost ~1 ms per item; the record write goes to a moto server and is reported beside, as moto's
latency says little about DynamoDB's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import CACHE, DEMO_BUNDLE, REGION, ROOT
from moodtune.catalog.cache import CatalogCache
from moodtune.catalog.songs import Catalog, ScoredSong, encode_vector
from moodtune.labels import NUM_LABELS
from moodtune.similarity import get_metric, top_k

# Everyday Korean status-message-like texts (written for this benchmark), 10-60 characters.
TEXTS = [
    "오늘 하루 너무 지치고 우울했어",
    "드디어 시험 끝났다 ㅋㅋㅋ 너무 신나",
    "왜 자꾸 나한테만 이러는지 진짜 화가 난다",
    "밤길이 너무 어두워서 무서웠어 ㅠㅠ",
    "생각지도 못한 선물을 받아서 깜짝 놀랐어",
    "그 사람 말투가 너무 역겹고 싫다",
    "그냥 평범한 화요일, 점심은 김밥",
    "비 오는 날 창밖을 보며 네 생각을 했어. 잘 지내고 있니? 나는 아직도 그 카페 앞을 지나가",
    "친구들이랑 바다 보러 왔는데 날씨까지 완벽해서 하루 종일 웃었다",
    "회사에서 또 야근... 언제쯤 여유가 생길까",
    "ㅠㅠ 보고 싶다",
    "새로 이사 온 동네가 조용하고 좋아서 마음이 편안해졌어",
]


# ---------------------------------------------------------------- small helpers


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50": percentile(samples, 50), "p95": percentile(samples, 95), "p99": percentile(samples, 99)}


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def synthetic_songs(n: int, seed: int = 0) -> list[ScoredSong]:
    """n songs with Dirichlet emotion vectors (what averaged chunk predictions look like)."""
    rng = np.random.default_rng(seed)
    vectors = rng.dirichlet(np.full(NUM_LABELS, 0.6), size=n).astype(np.float32)
    return [
        ScoredSong(f"song-{i:07d}", f"제목 {i}", f"가수 {i % 997}", tuple(map(float, v)), chunks=8)
        for i, v in enumerate(vectors)
    ]


def http_api_event(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) POST event."""
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "user-agent": "bench"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "localhost",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": uuid.uuid4().hex,
            "routeKey": f"POST {path}",
            "stage": "$default",
            "timeEpoch": int(now * 1000),
        },
        "body": json.dumps(body, ensure_ascii=False),
        "isBase64Encoded": False,
    }


@dataclass
class Context:
    """The Lambda context attributes Powertools reads."""

    function_name: str = "RecommendFunction"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:ap-northeast-2:123456789012:function:RecommendFunction"
    aws_request_id: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send the handler's JSON logs and EMF lines to /dev/null (they are still formatted)."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


class NullStore:
    """A store that writes nothing: the handler path without the record write."""

    def put(self, record: Any) -> None:
        return None


def koelectra_small_bundle() -> Path:
    """The KoELECTRA-Small-shaped random-weight INT8 bundle, built once under .cache/bench/."""
    from model_export.shapes import build_random_bundle

    return build_random_bundle(CACHE / "koelectra-small", shape="koelectra-small")


# ---------------------------------------------------------------- warm requests through the handler


def _start_local_dynamodb() -> tuple[Any, Any]:
    from infra.local.aws import create_tables, start_moto_server

    server = start_moto_server()
    os.environ.update(
        AWS_ENDPOINT_URL=server.endpoint_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        POWERTOOLS_TRACE_DISABLED="1",
        POWERTOOLS_SERVICE_NAME="moodtune",
        POWERTOOLS_METRICS_NAMESPACE="MoodTune",
    )
    import boto3

    from moodtune.service import DYNAMODB_CONFIG

    name = f"moodtune-feedback-bench-{uuid.uuid4().hex[:6]}"
    dynamodb = boto3.resource("dynamodb", config=DYNAMODB_CONFIG)
    create_tables(ROOT / "template.yaml", dynamodb.meta.client, {"FeedbackTable": name})
    return server, dynamodb.Table(name)


def _handler_module(service_factory: Callable[[], Any]) -> Any:
    """functions/recommend/app.py with moodtune.service answering ``service_factory()``."""
    import importlib

    from moodtune import service

    service.get_recommend_service = service_factory  # the handler looks it up on every request
    return importlib.import_module("recommend.app")


def _server_timing(header: str) -> dict[str, float]:
    parts = (item.split(";dur=") for item in header.split(", "))
    return {name: float(ms) for name, ms in parts}


def bench_handler(
    bundle: Path, label: str, threads: int, feedback_table: Any, songs: list[ScoredSong], requests: int
) -> dict:
    """Interleave bare inference, handler-without-write and handler-with-write on the same texts."""
    from moodtune.emotion.classifier import EmotionClassifier
    from moodtune.feedback.records import RecommendationStore
    from moodtune.service import RecommendService

    classifier = EmotionClassifier.from_bundle(bundle, threads=threads)
    # Prepared for the metric as the service's loader does it (at init), not by the first request.
    catalog = Catalog(model_version=classifier.model_version, songs=tuple(songs)).prepare(get_metric())
    catalogs = CatalogCache(lambda: catalog, ttl_seconds=3600)
    store = RecommendationStore(feedback_table, store_text=True, retention_days=30)
    with_write = RecommendService(classifier, catalogs, store)
    without_write = RecommendService(classifier, catalogs, NullStore())  # type: ignore[arg-type]
    current = {"service": without_write}
    app = _handler_module(lambda: current["service"])
    context = Context()
    events = [http_api_event("/v1/recommendations", {"text": t, "limit": 5}) for t in TEXTS]
    encoded = [classifier.tokenize([t]) for t in TEXTS]
    tokens = [int(e["attention_mask"].sum()) for e in encoded]

    def call(service: Any, event: dict[str, Any]) -> tuple[float, float, dict[str, float]]:
        current["service"] = service
        start, cpu_start = time.perf_counter(), time.thread_time()
        answer = app.lambda_handler(event, context)
        cpu = (time.thread_time() - cpu_start) * 1000
        elapsed = (time.perf_counter() - start) * 1000
        assert answer["statusCode"] == 201, answer
        return elapsed, cpu, _server_timing(answer["headers"]["Server-Timing"])

    bare, no_write, full, bare_cpu, no_write_cpu = [], [], [], [], []
    splits: dict[str, list[float]] = {"tokenize": [], "inference": [], "similarity": [], "write": []}
    log_handler = app.logger.registered_handler
    with quiet_stdout(), open(os.devnull, "w") as sink:
        previous_stream = log_handler.setStream(sink)  # JSON log lines are still formatted
        for i in range(20):  # warm-up: first calls pay lazy initialisation
            call(without_write, events[i % len(events)])
            classifier.infer(encoded[i % len(encoded)])
        for i in range(requests):
            k = i % len(TEXTS)
            start, cpu_start = time.perf_counter(), time.thread_time()
            classifier.infer(encoded[k])
            bare_cpu.append((time.thread_time() - cpu_start) * 1000)
            bare.append((time.perf_counter() - start) * 1000)
            elapsed, cpu, _ = call(without_write, events[k])
            no_write.append(elapsed)
            no_write_cpu.append(cpu)
            elapsed, _, timing = call(with_write, events[k])
            full.append(elapsed)
            for name, values in splits.items():
                values.append(timing[name])
        log_handler.setStream(previous_stream)
    ratio = percentile(no_write, 50) / percentile(bare, 50)
    # CPU time of the calling thread: other processes' load on a shared machine does not count. Exact
    # with 1 onnxruntime thread (inference runs on the caller); with more it misses the worker threads.
    cpu_ratio = percentile(no_write_cpu, 50) / percentile(bare_cpu, 50)
    return {
        "bundle": label,
        "threads": threads,
        "model_version": classifier.model_version,
        "tokens_mean": float(np.mean(tokens)),
        "bare": summary(bare),
        "no_write": summary(no_write),
        "full": summary(full),
        "split_p50": {name: percentile(values, 50) for name, values in splits.items()},
        "ratio": ratio,
        "cpu": {"bare_p50": percentile(bare_cpu, 50), "no_write_p50": percentile(no_write_cpu, 50)},
        "cpu_ratio": cpu_ratio,
    }


# ---------------------------------------------------------------- journeys beside recommendations


def bench_journeys(bundle: Path, songs: list[ScoredSong], requests: int) -> dict:
    """Warm POST /v1/journeys (length 6) and POST /v1/recommendations (limit 5) through the handler,
    interleaved on the same texts, without the record write; one ORT thread."""
    from moodtune.emotion.classifier import EmotionClassifier
    from moodtune.labels import LABELS
    from moodtune.service import RecommendService
    from moodtune.similarity import METRICS

    classifier = EmotionClassifier.from_bundle(bundle, threads=1)
    catalog = Catalog(model_version=classifier.model_version, songs=tuple(songs)).prepare(*METRICS.values())
    service = RecommendService(classifier, CatalogCache(lambda: catalog, ttl_seconds=3600), NullStore())  # type: ignore[arg-type]
    app = _handler_module(lambda: service)
    context = Context()
    rec_events = [http_api_event("/v1/recommendations", {"text": t, "limit": 5}) for t in TEXTS]
    journey_events = [
        http_api_event("/v1/journeys", {"text": t, "target": LABELS[i % len(LABELS)], "length": 6})
        for i, t in enumerate(TEXTS)
    ]

    def call(event: dict[str, Any]) -> float:
        start = time.perf_counter()
        answer = app.lambda_handler(event, context)
        elapsed = (time.perf_counter() - start) * 1000
        assert answer["statusCode"] == 201, answer
        return elapsed

    rec, jour = [], []
    log_handler = app.logger.registered_handler
    with quiet_stdout(), open(os.devnull, "w") as sink:
        previous_stream = log_handler.setStream(sink)
        for i in range(10):
            call(rec_events[i % len(TEXTS)])
            call(journey_events[i % len(TEXTS)])
        for i in range(requests):
            rec.append(call(rec_events[i % len(TEXTS)]))
            jour.append(call(journey_events[i % len(TEXTS)]))
        log_handler.setStream(previous_stream)
    return {
        "songs": len(songs),
        "recommendation": summary(rec),
        "journey": summary(jour),
        "ratio": percentile(jour, 50) / percentile(rec, 50),
    }


def print_journeys(rows: list[dict]) -> None:
    print(
        "\n## Warm POST /v1/journeys beside POST /v1/recommendations (demo bundle, 1 ORT thread, no write)\n"
    )
    print(
        table(
            [
                "songs",
                "recommendation p50 / p99",
                "journey (length 6) p50 / p99",
                "journey p50 / recommendation p50 (goal <= 1.5)",
            ],
            [
                [
                    f"{r['songs']:,}",
                    f"{r['recommendation']['p50']:.2f} / {r['recommendation']['p99']:.2f}",
                    f"{r['journey']['p50']:.2f} / {r['journey']['p99']:.2f}",
                    round(r["ratio"], 2),
                ]
                for r in rows
            ],
        )
    )


# ---------------------------------------------------------------- similarity + top-k alone


def bench_similarity(sizes: list[int], repeats: int) -> list[dict]:
    rng = np.random.default_rng(1)
    rows = []
    for n in sizes:
        matrix = rng.dirichlet(np.full(NUM_LABELS, 0.6), size=n).astype(np.float32)
        queries = rng.dirichlet(np.full(NUM_LABELS, 0.6), size=repeats).astype(np.float32)
        for name in ("cosine", "jensen_shannon"):
            metric = get_metric(name)
            prepared = metric.prepare(matrix)
            times = []
            for q in queries:
                start = time.perf_counter()
                top_k(metric(q, prepared), 5)
                times.append((time.perf_counter() - start) * 1000)
            rows.append({"songs": n, "metric": name, **summary(times)})
        del matrix
    return rows


# ---------------------------------------------------------------- init in a fresh process

INIT_CHILD = r"""
import json, pickle, sys, time
def peak_rss_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) parent across fork + exec.
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

t_start = time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    items = pickle.load(fh)
t_unpickle = time.perf_counter() - t_start
bundle = sys.argv[2]
for entry in sys.argv[3:]:
    sys.path.insert(0, entry)

t0 = time.perf_counter()
import numpy, onnxruntime, tokenizers, boto3, pydantic  # noqa
import aws_lambda_powertools.event_handler  # noqa
from moodtune.catalog import Catalog, CatalogCache
from moodtune.emotion.classifier import EmotionClassifier
from moodtune.similarity import get_metric
from moodtune import service
t1 = time.perf_counter()
classifier = EmotionClassifier.from_bundle(bundle)
t2 = time.perf_counter()
catalog = Catalog.from_items(classifier.model_version, items).prepare(get_metric())  # as the loader does
t3 = time.perf_counter()
store = service.get_store()  # boto3 session + resource, as the handler's init builds it
recommend_service = service.RecommendService(classifier, CatalogCache(lambda: catalog, 3600), store)
service.get_recommend_service = lambda: recommend_service
import recommend.app  # noqa: handler module: Powertools resolver, routes, warm (already loaded)
t4 = time.perf_counter()
scores = classifier.predict(["첫 요청 전에 한 번"])  # first inference pays ORT's lazy allocations
t5 = time.perf_counter()
print(
    "@@INIT@@" + json.dumps(
    {"imports": t1 - t0, "session": t2 - t1, "catalog": t3 - t2, "handler": t4 - t3,
     "first_inference": t5 - t4, "total": t5 - t0, "unpickle_excluded": t_unpickle,
     "rss_mb": peak_rss_mb(), "songs": len(catalog)}),
)
"""


def bench_init(bundle: Path, songs: list[ScoredSong], runs: int) -> dict:
    """Median of ``runs`` fresh processes; the catalog comes from in-memory SongsTable items."""
    items = [
        {
            "model_version": "x",
            "song_id": s.song_id,
            "title": s.title,
            "artist": s.artist,
            "dominant": s.dominant,
            "vector": encode_vector(s.vector),
            "chunks": s.chunks,
        }
        for s in songs
    ]
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as fh:
        pickle.dump(items, fh)
        items_path = fh.name
    env = {
        **os.environ,
        "POWERTOOLS_TRACE_DISABLED": "1",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    results = []
    try:
        for _ in range(runs):
            start = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    INIT_CHILD,
                    items_path,
                    str(bundle),
                    str(ROOT),
                    str(ROOT / "functions"),
                    str(ROOT / "layers" / "shared"),
                ],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            wall = time.perf_counter() - start
            line = next(x for x in done.stdout.splitlines() if x.startswith("@@INIT@@"))
            result = json.loads(line.removeprefix("@@INIT@@"))
            result["process_wall"] = wall
            results.append(result)
    finally:
        os.unlink(items_path)
    return {key: float(np.median([r[key] for r in results])) for key in results[0]}


# ---------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="warm requests per bundle")
    parser.add_argument("--songs", type=int, default=7500, help="catalog size for the handler benchmark")
    parser.add_argument("--init-runs", type=int, default=3, help="fresh processes per bundle for init time")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no 1,000,000-song run")
    parser.add_argument("--skip-koelectra", action="store_true", help="only the demo bundle")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="onnxruntime intra-op thread counts to compare (0: onnxruntime decides)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--journeys-only",
        action="store_true",
        help="only the journey table: 7,500 songs and the largest catalog (100,000 with --quick, else 1M)",
    )
    args = parser.parse_args(argv)
    if args.journeys_only:
        sizes = [7_500, 100_000 if args.quick else 1_000_000]
        requests = min(args.requests, 60) if args.quick else args.requests
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        print_journeys([bench_journeys(DEMO_BUNDLE, synthetic_songs(n), requests) for n in sizes])
        return 0
    if args.quick:
        args.requests, args.init_runs = min(args.requests, 60), 1

    bundles = [("demo", DEMO_BUNDLE)]
    if not args.skip_koelectra:
        print("building/reusing the KoELECTRA-Small-shaped bundle under .cache/bench ...", file=sys.stderr)
        bundles.append(("koelectra-small (random weights)", koelectra_small_bundle()))

    songs = synthetic_songs(args.songs)
    server, feedback_table = _start_local_dynamodb()
    try:
        handler_rows = [
            bench_handler(path, label, threads, feedback_table, songs, args.requests)
            for label, path in bundles
            for threads in args.threads
        ]
    finally:
        server.stop()
    sizes = [7_500, 100_000] if args.quick else [7_500, 100_000, 1_000_000]
    similarity_rows = bench_similarity(sizes, repeats=50 if args.quick else 200)
    init_rows = [(label, bench_init(path, songs, args.init_runs)) for label, path in bundles]
    journey_sizes = [args.songs, 100_000 if args.quick else 1_000_000]
    journey_rows = [
        bench_journeys(DEMO_BUNDLE, songs if n == args.songs else synthetic_songs(n), args.requests)
        for n in journey_sizes
    ]

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"# moodtune serving benchmark\n\nmachine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {load}; "
        f"{args.requests} warm requests per bundle, catalog {args.songs:,} songs in memory\n"
    )
    print("## Warm POST /v1/recommendations through the handler (ms)\n")
    print(
        table(
            [
                "bundle",
                "ORT threads",
                "tokens",
                "bare inference p50",
                "handler no write p50 / p95 / p99",
                "handler with write p50 / p95 / p99",
                "ratio no-write / bare (goal <= 1.5)",
                "CPU-time ratio",
            ],
            [
                [
                    r["bundle"],
                    r["threads"],
                    round(r["tokens_mean"], 1),
                    r["bare"]["p50"],
                    f"{r['no_write']['p50']:.2f} / {r['no_write']['p95']:.2f} / {r['no_write']['p99']:.2f}",
                    f"{r['full']['p50']:.2f} / {r['full']['p95']:.2f} / {r['full']['p99']:.2f}",
                    round(r["ratio"], 2),
                    round(r["cpu_ratio"], 2) if r["threads"] == 1 else "n/a",
                ]
                for r in handler_rows
            ],
        )
    )
    print("\n## Where the time goes (p50 ms, from the Server-Timing header)\n")
    print(
        table(
            [
                "bundle",
                "ORT threads",
                "tokenize",
                "inference",
                "similarity + top-k",
                "record write (moto)",
                "rest of handler",
            ],
            [
                [
                    r["bundle"],
                    r["threads"],
                    r["split_p50"]["tokenize"],
                    r["split_p50"]["inference"],
                    r["split_p50"]["similarity"],
                    r["split_p50"]["write"],
                    r["no_write"]["p50"]
                    - r["split_p50"]["tokenize"]
                    - r["split_p50"]["inference"]
                    - r["split_p50"]["similarity"],
                ]
                for r in handler_rows
            ],
        )
    )
    print("\n## Similarity + top-5 alone (ms)\n")
    print(
        table(
            ["songs", "metric", "p50", "p95", "p99", "goal"],
            [
                [
                    f"{r['songs']:,}",
                    r["metric"],
                    r["p50"],
                    r["p95"],
                    r["p99"],
                    {7_500: "< 1 ms", 1_000_000: "< 15 ms"}.get(r["songs"], "")
                    if r["metric"] == "cosine"
                    else "",
                ]
                for r in similarity_rows
            ],
        )
    )
    print(
        f"\n## Init in a fresh process ({args.songs:,}-song catalog from in-memory items; median of "
        f"{args.init_runs})\n"
    )
    print(
        table(
            [
                "bundle",
                "imports s",
                "model session s",
                "catalog s",
                "boto3 + handler module s",
                "first inference s",
                "total s (goal < 1.5)",
                "process wall s",
                "peak RSS MB (goal < 400)",
            ],
            [
                [
                    label,
                    r["imports"],
                    r["session"],
                    r["catalog"],
                    r["handler"],
                    r["first_inference"],
                    r["total"],
                    r["process_wall"],
                    round(r["rss_mb"], 1),
                ]
                for label, r in init_rows
            ],
        )
    )
    print_journeys(journey_rows)
    bench_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(peak RSS of this benchmark process, 1,000,000-song matrices included: {bench_rss:.0f} MB)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"handler": handler_rows, "similarity": similarity_rows, "init": dict(init_rows)}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
