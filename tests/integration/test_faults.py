"""Faults a deployment meets, through the handlers: DynamoDB throttling, the local AWS endpoint (a moto
server in its own process) killed and restarted mid-run, a catalog that cannot be read at cold start.

Each answers 503 with Retry-After while it lasts, recovers with the same function instances (the same
boto3 clients: nothing is re-imported or rebuilt), and leaves nothing half-written. A restarted moto
server comes back empty (it keeps no state), so what was written before the kill is gone with it; the
tables are re-created from template.yaml, as a fresh endpoint would have them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local.aws import MotoProcess, create_tables, start_moto_process
from moodtune import service
from moodtune.feedback.records import RecommendationStore
from moodtune.service import CATALOG_DYNAMODB_CONFIG, DYNAMODB_CONFIG

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REGION = "ap-northeast-2"
# What a recommendation record always holds (moodtune.feedback.records.to_item): a half-written item
# would lack some of them.
RECORD_ATTRIBUTES = {
    "recommendation_id",
    "created_at",
    "model_version",
    "mode",
    "dominant",
    "scores",
    "song_ids",
}


def _resource(endpoint_url: str, config: Any = DYNAMODB_CONFIG) -> Any:
    return boto3.resource(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


class _Throttling(BaseHTTPRequestHandler):
    """Answers every DynamoDB call as DynamoDB does when a table or the account is throttled."""

    code = "ProvisionedThroughputExceededException"
    calls = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).calls += 1
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{self.code}", "message": "throttled"})
        self.send_response(400)
        self.send_header("content-type", "application/x-amz-json-1.0")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(params=["ProvisionedThroughputExceededException", "ThrottlingException"])
def throttled_dynamodb(request: Any) -> Iterator[tuple[Any, type[_Throttling]]]:
    """A DynamoDB endpoint on loopback that throttles every call (the handlers' retry config)."""
    handler = type("Throttling", (_Throttling,), {"code": request.param, "calls": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield _resource(f"http://127.0.0.1:{server.server_address[1]}"), handler
    finally:
        server.shutdown()
        server.server_close()


def test_dynamodb_throttling_is_a_503_with_retry_after_on_both_writes(
    handlers, invoke, local_aws, monkeypatch, throttled_dynamodb
) -> None:
    dynamodb, endpoint = throttled_dynamodb
    throttled = RecommendationStore(
        dynamodb.Table(local_aws.feedback_table), store_text=True, retention_days=1
    )
    recommend_service = service.get_recommend_service()
    monkeypatch.setattr(recommend_service, "store", throttled)
    monkeypatch.setattr(service, "get_store", lambda: throttled)

    made = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "비 오는 날 우울해"})
    assert made.status == 503, made.body
    assert made.headers["retry-after"] == "1" and "retry later" in made.body["message"]
    assert endpoint.calls == DYNAMODB_CONFIG.retries["total_max_attempts"]  # retried, then answered

    fed = invoke(
        handlers.feedback,
        "POST",
        "/v1/recommendations/AAAAAAAAAAAAAAAAAAAAAA/feedback",
        {"song_id": "t01", "satisfied": True},
    )
    assert fed.status == 503 and fed.headers["retry-after"] == "1"


@pytest.fixture
def moto_process() -> Iterator[dict[str, Any]]:
    """A moto server in its own process (so that it can be killed), with the two tables; the holder
    dict keeps the current process, which the test replaces when it restarts the server."""
    holder: dict[str, Any] = {"server": start_moto_process()}
    try:
        yield holder
    finally:
        server: MotoProcess = holder["server"]
        server.stop()


def _tables(endpoint_url: str, local_aws: Any) -> None:
    create_tables(
        ROOT / "template.yaml",
        _resource(endpoint_url).meta.client,
        {"SongsTable": local_aws.songs_table, "FeedbackTable": local_aws.feedback_table},
    )


def _scan(table: Any) -> list[dict[str, Any]]:
    return table.scan(ConsistentRead=True)["Items"]


def test_the_aws_endpoint_killed_and_restarted_mid_run_is_503_then_recovers_without_a_restart(
    handlers, invoke, local_aws, monkeypatch, moto_process
) -> None:
    server: MotoProcess = moto_process["server"]
    _tables(server.endpoint_url, local_aws)
    table = _resource(server.endpoint_url).Table(local_aws.feedback_table)
    store = RecommendationStore(table, store_text=True, retention_days=1)  # one client for the whole run
    recommend_service = service.get_recommend_service()
    monkeypatch.setattr(recommend_service, "store", store)
    monkeypatch.setattr(service, "get_store", lambda: store)

    def recommend() -> Any:
        return invoke(
            handlers.recommend, "POST", "/v1/recommendations", {"text": "오늘 너무 행복해", "limit": 2}
        )

    def feedback(made: Any) -> Any:
        path = f"/v1/recommendations/{made.body['recommendation_id']}/feedback"
        return invoke(
            handlers.feedback, "POST", path, {"song_id": made.body["songs"][0]["song_id"], "satisfied": True}
        )

    before = recommend()
    assert before.status == 201 and feedback(before).status == 200

    server.process.kill()
    server.process.wait()
    down = [recommend(), recommend()]
    assert [a.status for a in down] == [503, 503]
    assert all(a.headers["retry-after"] == "1" for a in down)
    assert feedback(before).status == 503
    assert invoke(handlers.recommend, "GET", "/v1/health").status == 200  # the catalog is in memory

    restarted = start_moto_process(port=server.port)
    moto_process["server"] = restarted
    _tables(restarted.endpoint_url, local_aws)
    after = recommend()
    assert after.status == 201, after.body  # the same store and boto3 client: nothing was restarted
    fed = feedback(after)
    assert fed.status == 200, fed.body

    items = _scan(table)
    assert [i["recommendation_id"] for i in items] == [
        after.body["recommendation_id"]
    ]  # the 503s wrote nothing
    assert all(set(item) >= RECORD_ATTRIBUTES for item in items)  # nothing half-written
    assert items[0]["feedback"][after.body["songs"][0]["song_id"]]["satisfied"] is True


def test_a_catalog_that_cannot_be_read_at_cold_start_is_503_until_it_can(
    handlers, invoke, local_aws, scored_catalog, monkeypatch, moto_process
) -> None:
    from moodtune.catalog import write_songs

    server: MotoProcess = moto_process["server"]
    server.process.kill()  # SongsTable's endpoint is down when the function starts
    server.process.wait()
    monkeypatch.setattr(
        service, "catalog_dynamodb", lambda: _resource(server.endpoint_url, CATALOG_DYNAMODB_CONFIG)
    )
    cold = service.get_recommend_service.__wrapped__()  # a new service, as a cold start builds it
    monkeypatch.setattr(service, "get_recommend_service", lambda: cold)
    service.warm_recommend()  # init goes on without a catalog: no exception, the function starts

    health = invoke(handlers.recommend, "GET", "/v1/health")
    assert health.status == 503 and health.headers["retry-after"] == "1"
    made = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "오늘 너무 행복해"})
    assert made.status == 503 and made.headers["retry-after"] == "1"

    restarted = start_moto_process(port=server.port)
    moto_process["server"] = restarted
    _tables(restarted.endpoint_url, local_aws)
    write_songs(
        _resource(restarted.endpoint_url).Table(local_aws.songs_table), cold.model_version, scored_catalog
    )
    health = invoke(handlers.recommend, "GET", "/v1/health")
    assert health.status == 200 and health.body["catalog_size"] == len(scored_catalog)
    made = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "오늘 너무 행복해"})
    assert made.status == 201 and made.body["songs"]
