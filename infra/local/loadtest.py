"""``python -m infra.local.loadtest`` (``make loadtest``): a bounded load test on loopback, then an audit.

A local stack of its own (a child process, free 127.0.0.1 ports, route throttling off: this measures the
functions, not the HTTP API's throttle); ``--clients`` threads, each with its own connection, for
``--seconds``, then they stop by themselves. Each client interleaves the routes as a user would: a
recommendation, then feedback on one of its songs (now and then on an older recommendation of its own,
or the same song again with the other answer, which overwrites), and now and then a song lookup.

Afterwards FeedbackTable is read straight from the local AWS endpoint and every answer is checked:
every 201 has its record with the songs it answered; every 200 feedback is in its record, once (the
record's ``feedback`` map holds one entry per song) and as the last answer given for that song; no
record exists that no 201 announced (but the stack's own sample at start); no 5xx but a 503 with
Retry-After (documented). A table of requests, throughput and p50/p99 per route follows, with the
host's CPU beside it. Exit status 1 when anything was lost, duplicated or an unexplained 5xx came back.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from infra.local.stack import REGION, ChildStack, StackConfig, child_stack

TEXTS = (
    "오늘 시험 끝나서 너무 행복해 ㅎㅎ",
    "퇴근길에 비가 와서 좀 우울해",
    "친구랑 싸워서 화가 나",
    "내일 발표가 너무 무서워",
    "갑자기 연락이 와서 깜짝 놀랐어",
    "그냥 평범한 하루였어",
    "그 사람 행동이 정말 역겨웠어",
    "주말에 여행 가서 신났어 ㅋㅋ",
)


@dataclass
class Call:
    """One request: its route, status, latency, and whether a 5xx was a documented 503."""

    route: str
    status: int
    ms: float
    retry_after: bool = False


@dataclass
class Client:
    """One simulated user: its own connection, its recommendations and the feedback it was told of."""

    number: int
    api_url: str
    seed: int
    calls: list[Call] = field(default_factory=list)
    recommendations: dict[str, list[str]] = field(default_factory=dict)  # id -> song ids answered
    feedback: dict[tuple[str, str], tuple[bool, str]] = field(default_factory=dict)  # last 200 answer
    errors: list[str] = field(default_factory=list)

    def _call(self, session: requests.Session, route: str, method: str, path: str, body: Any) -> Any:
        start = time.perf_counter()
        try:
            answer = session.request(method, f"{self.api_url}{path}", json=body, timeout=30)
        except requests.RequestException as exc:
            self.calls.append(Call(route, 0, (time.perf_counter() - start) * 1000))
            self.errors.append(f"{route}: {type(exc).__name__}")
            return None
        ms = (time.perf_counter() - start) * 1000
        self.calls.append(Call(route, answer.status_code, ms, "retry-after" in answer.headers))
        return answer

    def run(self, until: float) -> None:
        """Interleave recommendations, feedback and song lookups until ``until`` (monotonic)."""
        rng = random.Random(self.seed)
        with requests.Session() as session:
            while time.monotonic() < until:
                body = {"text": rng.choice(TEXTS), "limit": rng.randint(1, 5)}
                answer = self._call(session, "POST /v1/recommendations", "POST", "/v1/recommendations", body)
                if answer is not None and answer.status_code == 201:
                    made = answer.json()
                    self.recommendations[made["recommendation_id"]] = [s["song_id"] for s in made["songs"]]
                if not self.recommendations or time.monotonic() >= until:
                    continue
                rid = (
                    rng.choice(list(self.recommendations))
                    if rng.random() < 0.3
                    else next(reversed(self.recommendations))
                )
                songs = self.recommendations[rid]
                if not songs:
                    continue
                song = rng.choice(songs)
                satisfied = rng.random() < 0.5
                path = f"/v1/recommendations/{rid}/feedback"
                fed = self._call(
                    session,
                    "POST /v1/recommendations/{id}/feedback",
                    "POST",
                    path,
                    {"song_id": song, "satisfied": satisfied},
                )
                if fed is not None and fed.status_code == 200:
                    self.feedback[(rid, song)] = (satisfied, fed.json()["recorded_at"])
                if rng.random() < 0.2:
                    self._call(session, "GET /v1/songs/{song_id}", "GET", f"/v1/songs/{song}", None)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def cpu_model() -> str:
    """The host CPU's model name (/proc/cpuinfo), to print beside every figure."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def scan(table: Any) -> list[dict[str, Any]]:
    """Every item of a table."""
    items, kwargs = [], {}
    while True:
        page = table.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class Audit:
    """What the table holds against what the clients were told."""

    lost_records: int = 0
    wrong_songs: int = 0
    lost_feedback: int = 0
    duplicated: int = 0
    unannounced_records: int = 0
    unexplained_5xx: int = 0
    documented_503: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.lost_records
            or self.wrong_songs
            or self.lost_feedback
            or self.duplicated
            or self.unannounced_records
            or self.unexplained_5xx
        )


def audit(clients: list[Client], stack: ChildStack) -> Audit:
    """Check every 201 and every 200 feedback against FeedbackTable on the stack's endpoint."""
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=stack.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return audit_items(clients, scan(dynamodb.Table(StackConfig().feedback_table)))


def audit_items(clients: list[Client], items: list[dict[str, Any]], samples: int = 1) -> Audit:
    """Every client's 201s and 200 feedback against FeedbackTable's ``items``; ``samples``: records
    written by no client (the stack's banner sends one sample recommendation at start)."""
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_id[item["recommendation_id"]].append(item)
    result = Audit()
    announced: set[str] = set()
    for client in clients:
        for rid, songs in client.recommendations.items():
            announced.add(rid)
            found = by_id.get(rid, [])
            if not found:
                result.lost_records += 1
                continue
            result.duplicated += len(found) - 1
            if sorted(found[0].get("song_ids", [])) != sorted(songs):  # stored as a string set
                result.wrong_songs += 1
        for (rid, song), (satisfied, at) in client.feedback.items():
            stored = (by_id.get(rid) or [{}])[0].get("feedback", {}).get(song)
            if stored is None or stored.get("satisfied") != satisfied or stored.get("at") != at:
                result.lost_feedback += 1
        for call in client.calls:
            if call.status >= 500 or call.status == 0:
                if call.status == 503 and call.retry_after:
                    result.documented_503 += 1
                else:
                    result.unexplained_5xx += 1
    result.unannounced_records = max(0, len(set(by_id) - announced) - samples)
    return result


def table(clients: list[Client], seconds: float) -> str:
    """Requests, throughput and p50/p99 per route, as a Markdown table."""
    calls: dict[str, list[Call]] = defaultdict(list)
    for client in clients:
        for call in client.calls:
            calls[call.route].append(call)
    lines = [
        "| route | requests | req/s | p50 ms | p99 ms | statuses |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for route in sorted(calls):
        ms = [c.ms for c in calls[route]]
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(Counter(c.status for c in calls[route]).items()))
        lines.append(
            f"| {route} | {len(ms)} | {len(ms) / seconds:.1f} | {statistics.median(ms):.1f} | "
            f"{percentile(ms, 99):.1f} | {statuses} |"
        )
    every = [c for cs in calls.values() for c in cs]
    lines.append(f"| all | {len(every)} | {len(every) / seconds:.1f} | | | |")
    return "\n".join(lines)


def run(clients: int, seconds: float, seed: int) -> tuple[list[Client], Audit, float]:
    """Start a stack, load it for ``seconds`` with ``clients`` threads, audit it, stop it."""
    with child_stack(throttle=False) as stack:
        users = [Client(number=i, api_url=stack.api_url, seed=seed * 1000 + i) for i in range(clients)]
        start = time.monotonic()
        until = start + seconds
        threads = [threading.Thread(target=u.run, args=(until,), name=f"client-{u.number}") for u in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 60)  # each stops by itself once its last request is answered
        elapsed = time.monotonic() - start
        return users, audit(users, stack), elapsed


def main(argv: list[str] | None = None) -> int:
    """Run the load test, print the table and the audit; exit 1 if anything was lost or unexplained."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.loadtest", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (threads)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long they send requests")
    parser.add_argument("--seed", type=int, default=15, help="seeds each client's choices")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures there")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 64 and 1 <= args.seconds <= 600):
        parser.error("--clients must be 1..64 and --seconds 1..600 (a bounded test)")
    users, result, elapsed = run(args.clients, args.seconds, args.seed)
    print(
        f"\nmoodtune load test: {args.clients} clients for {args.seconds:.0f} s on 127.0.0.1 "
        f"({elapsed:.1f} s with the last answers); host CPU: {cpu_model()}\n"
    )
    print(table(users, elapsed))
    print(
        f"\nrecords: {sum(len(u.recommendations) for u in users)} announced (201), "
        f"{result.lost_records} lost, {result.wrong_songs} with other songs, {result.duplicated} duplicated, "
        f"{result.unannounced_records} unannounced\n"
        f"feedback: {sum(len(u.feedback) for u in users)} (recommendation, song) pairs answered 200, "
        f"{result.lost_feedback} not in FeedbackTable as last answered\n"
        f"5xx: {result.documented_503} documented 503 (Retry-After), {result.unexplained_5xx} unexplained"
    )
    for error in sorted({e for u in users for e in u.errors}):
        print(f"client error: {error}")
    if args.json:
        args.json.write_text(json.dumps({"audit": result.__dict__, "elapsed_s": elapsed}, indent=2))
    print("OK: nothing lost, nothing duplicated, no unexplained 5xx" if result.ok else "FAILED", flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
