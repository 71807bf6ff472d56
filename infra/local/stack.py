"""``python -m infra.local.stack`` (``make demo``): the whole moodtune system on this machine.

1. a local AWS endpoint: moto in server mode on 127.0.0.1:``MOTO_PORT`` (5000);
2. SongsTable and FeedbackTable created from template.yaml's own definitions;
3. the demo catalog (``data/demo/songs.jsonl``) scored with the demo bundle and written to SongsTable,
   then published as its catalog snapshot to the local snapshot bucket, which the handler serves from;
4. the HTTP front on 127.0.0.1:``MOODTUNE_PORT`` (3000): API Gateway v2 events for the same handlers;
5. a sample request, printed as a curl command with its answer; then it serves until Ctrl-C (or
   SIGTERM) and stops everything it started.

No AWS account is touched: the handlers' boto3 reaches moto through ``AWS_ENDPOINT_URL`` with dummy
credentials.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from infra.local.aws import MotoServer, create_tables, free_port, start_moto_server
from infra.local.front import ROOT, Front, make_server
from moodtune.feedback.export import LOCAL_BUCKET as EXPORT_BUCKET

log = logging.getLogger("moodtune.stack")

REGION = "ap-northeast-2"
SAMPLE_TEXT = "오늘 시험 끝나서 너무 행복해 ㅎㅎ"
TABLES = {"SongsTable": "SONGS_TABLE", "FeedbackTable": "FEEDBACK_TABLE"}
_OFF = frozenset({"off", "0", "false", "no"})
CHILD_START_S = 180


class StackError(Exception):
    """The stack cannot start (a port is taken, the bundle is missing...): one clear line, exit 2."""


@dataclass(frozen=True)
class StackConfig:
    """Where the local stack listens and what it loads; ``from_env`` reads the documented variables."""

    host: str = "127.0.0.1"
    moto_host: str = "127.0.0.1"
    moto_port: int = 5000
    api_port: int = 3000
    songs_table: str = "moodtune-songs-local"
    feedback_table: str = "moodtune-feedback-local"
    snapshot_bucket: str = "moodtune-snapshots-local"
    model_dir: Path = ROOT / "models" / "demo"
    catalog: Path = ROOT / "data" / "demo" / "songs.jsonl"
    template: Path = ROOT / "template.yaml"
    web_dir: Path = ROOT / "web"
    verbose: bool = False
    throttle: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, verbose: bool = False) -> StackConfig:
        """MOTO_PORT, MOODTUNE_PORT, MOTO_HOST, SONGS_TABLE, FEEDBACK_TABLE, SNAPSHOT_BUCKET, MODEL_DIR,
        MOODTUNE_CATALOG, MOODTUNE_THROTTLE (``off``: no route throttling, for the load test and the
        fuzzer)."""

        def port(name: str, default: int) -> int:
            raw = environ.get(name, str(default))
            if not raw.isdigit() or not 0 <= int(raw) < 65536:
                raise StackError(f"{name}={raw!r} is not a TCP port number")
            return int(raw)

        defaults = cls()
        return cls(
            moto_host=environ.get("MOTO_HOST", defaults.moto_host),
            moto_port=port("MOTO_PORT", defaults.moto_port),
            api_port=port("MOODTUNE_PORT", defaults.api_port),
            songs_table=environ.get("SONGS_TABLE", defaults.songs_table),
            feedback_table=environ.get("FEEDBACK_TABLE", defaults.feedback_table),
            snapshot_bucket=environ.get("SNAPSHOT_BUCKET", defaults.snapshot_bucket),
            model_dir=Path(environ.get("MODEL_DIR", defaults.model_dir)).resolve(),
            catalog=Path(environ.get("MOODTUNE_CATALOG", defaults.catalog)).resolve(),
            verbose=verbose,
            throttle=environ.get("MOODTUNE_THROTTLE", "on").strip().lower() not in _OFF,
        )


def handler_environment(
    config: StackConfig, endpoint_url: str, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """The environment the handlers run with locally: what template.yaml sets in AWS, plus the endpoint.

    ORT_INTRA_OP_THREADS is 1, as template.yaml sets it for RecommendFunction (one vCPU), unless the
    user's environment sets it: local latencies then match AWS's instead of using every core.
    """
    env = {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "SONGS_TABLE": config.songs_table,
        "FEEDBACK_TABLE": config.feedback_table,
        "EXPORT_BUCKET": EXPORT_BUCKET,
        "SNAPSHOT_BUCKET": config.snapshot_bucket,
        "MODEL_DIR": str(config.model_dir),
        "ORT_INTRA_OP_THREADS": environ.get("ORT_INTRA_OP_THREADS") or "1",
        "POWERTOOLS_SERVICE_NAME": "moodtune",
        "POWERTOOLS_METRICS_NAMESPACE": "MoodTune",
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
    }
    if not config.verbose:
        # A quiet console: warnings only, and no EMF metric lines on every request.
        env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        env["POWERTOOLS_METRICS_DISABLED"] = "true"
    return env


def publish_demo_snapshot(config: StackConfig, dynamodb: Any, s3: Any, model_version: str) -> None:
    """Publish SongsTable's demo partition as the catalog snapshot the handler serves (the path
    CatalogPublisherFunction takes in AWS)."""
    from moodtune.catalog.objects import S3Objects
    from moodtune.catalog.publish import publish_catalog
    from moodtune.catalog.snapshot import publish_snapshot
    from moodtune.catalog.songs import CatalogColumns

    objects = S3Objects(s3, config.snapshot_bucket)
    report = publish_catalog(dynamodb.Table(config.songs_table), objects, model_version)
    if not report.songs:
        # The publisher never replaces a catalog with an empty one; a stack started with no songs
        # publishes its empty catalog on purpose, so that health answers "degraded", not 503.
        publish_snapshot(objects, model_version, CatalogColumns.from_songs([]))
    log.info("catalog snapshot %s: %d songs, %d bytes", report.snapshot[:12], report.songs, report.bytes)


def _check_port_free(host: str, port: int, what: str, variable: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers will: SO_REUSEADDR ignores old TIME_WAIT connections but not a live listener.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise StackError(
                f"port {port} on {host} ({what}) is already in use: stop whatever holds it "
                f"(another `make demo`?) or choose another port, e.g. {variable}={port + 1} make demo"
            ) from None


def load_demo_catalog(config: StackConfig, dynamodb: Any) -> tuple[str, int]:
    """Ingest the demo catalog with the bundle into SongsTable; (model_version, songs stored).

    The pipeline of `moodtune ingest` (moodtune.catalog.ingest): bad lines are logged and skipped, and songs
    already stored with the same content hash are kept as they are.
    """
    from moodtune.catalog.ingest import IngestSettings, SongScorer, ingest_file
    from moodtune.emotion.classifier import EmotionClassifier

    classifier = EmotionClassifier.from_bundle(config.model_dir)
    if not config.catalog.is_file():
        log.warning("no demo catalog at %s: the stack serves an empty catalog", config.catalog)
        return classifier.model_version, 0
    settings = IngestSettings()
    report = ingest_file(
        SongScorer(classifier, settings.lyrics_options(classifier.lines_per_chunk), settings.batch_size),
        dynamodb.Table(config.songs_table),
        config.catalog,
        max_lyrics_bytes=settings.max_lyrics_bytes,
    )
    for rejected in report.rejected:
        log.warning("%s: %s (skipped)", config.catalog, rejected)
    return classifier.model_version, report.written + report.unchanged


@dataclass
class LocalStack:
    """The running parts: ``start()`` brings them up in order, ``stop()`` takes down what started."""

    config: StackConfig
    moto: MotoServer | None = None
    server: Any = None
    thread: threading.Thread | None = None
    model_version: str = ""
    songs: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        assert self.server is not None
        return f"http://{self.config.host}:{self.server.server_address[1]}"

    @property
    def endpoint_url(self) -> str:
        assert self.moto is not None
        host = "127.0.0.1" if self.moto.host in ("0.0.0.0", "") else self.moto.host
        return f"http://{host}:{self.moto.port}"

    def _phase(self, name: str, started: float) -> float:
        now = time.perf_counter()
        self.timings[name] = now - started
        return now

    def start(self) -> None:
        """Start moto, create the tables, load the catalog, import the handlers, serve the front."""
        config = self.config
        if not (config.model_dir / "manifest.json").is_file():
            raise StackError(
                f"no model bundle at {config.model_dir} (manifest.json missing): "
                "build the demo bundle with `make demo-model`, or set MODEL_DIR"
            )
        _check_port_free(config.moto_host, config.moto_port, "local AWS endpoint", "MOTO_PORT")
        _check_port_free(config.host, config.api_port, "HTTP front", "MOODTUNE_PORT")

        t = begin = time.perf_counter()
        self.moto = start_moto_server(config.moto_host, config.moto_port, quiet=not config.verbose)

        env = handler_environment(config, self.endpoint_url)
        for name in (*env, "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            self._saved_env[name] = os.environ.get(name)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)  # never a real account's profile: dummy keys only
        os.environ.update(env)

        dynamodb = boto3.resource("dynamodb")
        create_tables(
            config.template,
            dynamodb.meta.client,
            {"SongsTable": config.songs_table, "FeedbackTable": config.feedback_table},
        )
        # The feedback export's bucket, so `moodtune export-feedback` and a local invoke of
        # ExportFeedbackFunction work against the stack from the start.
        s3 = boto3.client("s3")
        for bucket in (EXPORT_BUCKET, config.snapshot_bucket):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        t = self._phase("moto + tables", t)

        self.model_version, self.songs = load_demo_catalog(config, dynamodb)
        t = self._phase("catalog scored + written", t)
        publish_demo_snapshot(config, dynamodb, s3, self.model_version)
        t = self._phase("snapshot published", t)

        front = Front.from_template(config.template, throttle=config.throttle)
        try:
            self.server = make_server(front, config.host, config.api_port, config.web_dir)
        except OSError as exc:
            raise StackError(f"cannot listen on {config.host}:{config.api_port}: {exc.strerror}") from None
        self.thread = threading.Thread(target=self.server.serve_forever, name="front", daemon=True)
        self.thread.start()
        t = self._phase("handlers + front", t)

        # The handlers warmed up when imported (their init phase); one request proves the whole path.
        with urllib.request.urlopen(f"{self.api_url}/v1/health", timeout=60) as answer:
            answer.read()
        t = self._phase("first request", t)
        self.timings["total"] = t - begin

    def stop(self) -> None:
        """Stop the front, then moto, and restore the environment; safe to call twice."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.thread is not None:
            self.thread.join(timeout=10)
            self.thread = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class ChildStack:
    """A local stack running in a child process: its API and its local AWS endpoint."""

    api_url: str
    endpoint_url: str


@contextlib.contextmanager
def child_stack(throttle: bool = False) -> Iterator[ChildStack]:
    """``python -m infra.local.stack`` in a child process on free loopback ports (the fuzzer and the
    load test use one; ``throttle=False``: no route throttling); stopped with Ctrl-C's signal after."""
    moto_port = free_port()
    env = {
        **os.environ,
        "MOTO_PORT": str(moto_port),
        "MOODTUNE_PORT": str(free_port()),
        "MOODTUNE_THROTTLE": "on" if throttle else "off",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("AWS_ENDPOINT_URL", "SONGS_TABLE", "FEEDBACK_TABLE", "MODEL_DIR", "MOODTUNE_CATALOG"):
        env.pop(name, None)
    url = f"http://127.0.0.1:{env['MOODTUNE_PORT']}"
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + CHILD_START_S
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"the local stack exited with {process.returncode}:\n{output}")
            try:
                with urllib.request.urlopen(f"{url}/v1/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local stack did not answer on {url} within {CHILD_START_S} s")
            time.sleep(0.2)
        yield ChildStack(api_url=url, endpoint_url=f"http://127.0.0.1:{moto_port}")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def sample(api_url: str, text: str = SAMPLE_TEXT, limit: int = 3) -> tuple[str, int, Any]:
    """POST one recommendation request; (the equivalent curl command, status, decoded answer)."""
    payload = json.dumps({"text": text, "limit": limit}, ensure_ascii=False)
    url = f"{api_url}/v1/recommendations"
    curl = f"curl -s -X POST {url} -H 'content-type: application/json' -d {shlex.quote(payload)}"
    request = urllib.request.Request(
        url, data=payload.encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return curl, answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return curl, exc.code, json.loads(exc.read() or b"null")


@contextlib.contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM (previous handlers restored afterwards)."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def compact_answer(answer: Any) -> str:
    """The sample's JSON answer, one song per line, each song's scores and explanation elided."""
    if not (isinstance(answer, dict) and isinstance(answer.get("songs"), list)):
        return json.dumps(answer, ensure_ascii=False, indent=2)
    lines = [
        f"  {json.dumps(key, ensure_ascii=False)}: {json.dumps(value, ensure_ascii=False)},"
        for key, value in answer.items()
        if key != "songs"
    ]
    songs = [
        json.dumps({k: v for k, v in song.items() if k not in ("scores", "explanation")}, ensure_ascii=False)
        for song in answer["songs"]
    ]
    lines.append('  "songs": [  // each song also carries "scores" and "explanation"')
    lines.extend(f"    {song}," for song in songs)
    lines[-1] = lines[-1].rstrip(",")
    return "{\n" + "\n".join(lines) + "\n  ]\n}"


def _print_banner(stack: LocalStack, curl: str, status: int, answer: Any) -> None:
    phases = "  ".join(f"{name} {seconds:.2f}s" for name, seconds in stack.timings.items() if name != "total")
    print(
        f"\nmoodtune local stack ready in {stack.timings['total']:.1f} s ({phases})\n"
        f"  API + web    {stack.api_url}/   (routes from template.yaml)\n"
        f"  AWS endpoint {stack.endpoint_url}   (moto; tables {stack.config.songs_table}, "
        f"{stack.config.feedback_table})\n"
        f"  model        {stack.model_version}, {stack.songs} songs in the catalog\n"
        f"\n$ {curl}\n"
        f"HTTP {status}\n{compact_answer(answer)}\n"
        f"\n$ .venv/bin/moodtune recommend '퇴근길에 비가 와서 좀 우울해'   (the CLI, same API)\n"
        f"  web page: open {stack.api_url}/ in a browser\n"
        "Ctrl-C stops everything.",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the local stack until Ctrl-C; exit 2 with one clear line when it cannot start."""
    parser = argparse.ArgumentParser(prog="python -m infra.local.stack", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="handler logs, metrics, requests")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if not args.verbose:
        # Powertools warns when a handler call added no metric (health, openapi): noise on a console.
        warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    else:
        log.setLevel(logging.INFO)
        logging.getLogger("moodtune.front").setLevel(logging.INFO)
    with _stop_signals() as stop:
        try:
            stack = LocalStack(StackConfig.from_env(verbose=args.verbose))
            with stack:
                curl, status, answer = sample(stack.api_url)
                _print_banner(stack, curl, status, answer)
                stop.wait()
                print("\nstopping the local stack...", flush=True)
        except StackError as exc:
            print(f"make demo: error: {exc}", file=sys.stderr)
            return 2
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
