"""Shared fixtures: a moto server on a free port, tables from template.yaml, a small scored catalog,
and API Gateway v2 events for invoking the handlers in-process (their boto3 calls go over HTTP).
"""

from __future__ import annotations

import base64
import importlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Metrics

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
DEMO_BUNDLE = ROOT / "models" / "demo"
REGION = "ap-northeast-2"

# A small catalog with original lines written for these tests (no real lyrics).
TEST_SONGS: list[dict[str, Any]] = [
    {
        "song_id": "t01",
        "title": "햇살 가득한 아침",
        "artist": "테스트 밴드",
        "lyrics": "창문을 열면 햇살이 웃어\n오늘은 뭐든 잘 될 것 같아\n발걸음이 가벼워 노래가 나와\n"
        "너와 함께라서 정말 행복해\n하늘이 파래서 신이 나",
    },
    {
        "song_id": "t02",
        "title": "빈 방",
        "artist": "테스트 밴드",
        "lyrics": "불 꺼진 방에 혼자 앉아\n네가 남긴 컵을 바라봐\n눈물이 자꾸 흘러내려\n"
        "보고 싶다는 말도 못 해",
    },
    {
        "song_id": "t03",
        "title": "참을 만큼 참았어",
        "artist": "소리샘",
        "lyrics": "왜 자꾸 나만 탓하는 거야\n정말 화가 나서 못 참겠어\n문을 쾅 닫고 나와 버렸어\n"
        "더는 네 말 듣고 싶지 않아",
    },
    {
        "song_id": "t04",
        "title": "어두운 골목",
        "artist": "소리샘",
        "lyrics": "발소리가 뒤에서 따라와\n심장이 쿵쾅거려 무서워\n불빛 하나 없는 길 위에서\n"
        "숨을 죽이고 걸음을 재촉해",
    },
    {
        "song_id": "t05",
        "title": "깜짝 선물",
        "artist": "봄바람",
        "lyrics": "문을 열었더니 풍선이 가득\n생각도 못 했어 이게 뭐야\n눈이 휘둥그레 입이 딱 벌어져\n"
        "세상에 이런 일이 다 있네",
    },
    {
        "song_id": "t06",
        "title": "평범한 화요일",
        "artist": "봄바람",
        "lyrics": "버스를 타고 회사에 가\n점심은 김밥 한 줄 먹었어\n오후엔 회의가 두 개 있고\n"
        "저녁엔 빨래를 개야지",
    },
    {
        "song_id": "t07",
        "title": "정말 싫어",
        "artist": "테스트 밴드",
        "lyrics": "거짓말만 늘어놓는 너\n역겨워서 쳐다보기도 싫어\n더러운 말들이 귀에 맴돌아\n"
        "다시는 엮이고 싶지 않아",
    },
    {
        "song_id": "t08",
        "title": "다시 웃는 날",
        "artist": "소리샘",
        "lyrics": "힘들었던 날들은 지나가고\n오늘은 친구들과 웃고 떠들어\n맛있는 걸 먹으며 노래해\n"
        "기분이 좋아서 춤을 춰",
    },
]


def pytest_configure(config: pytest.Config) -> None:
    # The handlers filter this at import, but pytest resets warning filters for every test.
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")


@dataclass
class LocalAws:
    """The moto server of the session and the tables created from template.yaml."""

    endpoint_url: str
    songs_table: str
    feedback_table: str
    snapshot_bucket: str = ""

    def resource(self) -> Any:
        return boto3.resource("dynamodb", endpoint_url=self.endpoint_url, region_name=REGION)

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION)


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    """A moto server on a free port with SongsTable and FeedbackTable made from template.yaml.

    Sets AWS_ENDPOINT_URL, dummy credentials and the region for the whole session, so boto3 in
    moodtune and in the handlers reaches the local endpoint with no code change.
    """
    from infra.local.aws import create_tables, start_moto_process

    patch = pytest.MonkeyPatch()
    # Its own process: other tests' in-process mock_aws resets moto's global state on exit.
    server = start_moto_process()
    suffix = uuid.uuid4().hex[:8]
    aws = LocalAws(
        endpoint_url=server.endpoint_url,
        songs_table=f"moodtune-songs-test-{suffix}",
        feedback_table=f"moodtune-feedback-test-{suffix}",
        snapshot_bucket=f"moodtune-snapshots-test-{suffix}",
    )
    for name, value in {
        "AWS_ENDPOINT_URL": aws.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "SONGS_TABLE": aws.songs_table,
        "FEEDBACK_TABLE": aws.feedback_table,
        "SNAPSHOT_BUCKET": aws.snapshot_bucket,
        "MODEL_DIR": str(DEMO_BUNDLE),
        "ORT_INTRA_OP_THREADS": "1",
        "POWERTOOLS_SERVICE_NAME": "moodtune",
        "POWERTOOLS_METRICS_NAMESPACE": "MoodTune",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }.items():
        patch.setenv(name, value)
    client = boto3.client("dynamodb", endpoint_url=aws.endpoint_url, region_name=REGION)
    create_tables(TEMPLATE, client, {"SongsTable": aws.songs_table, "FeedbackTable": aws.feedback_table})
    aws.s3().create_bucket(
        Bucket=aws.snapshot_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    try:
        yield aws
    finally:
        server.stop()
        patch.undo()


@pytest.fixture(scope="session")
def demo_classifier() -> Any:
    """The demo bundle's classifier (one onnxruntime session for the whole run)."""
    from moodtune.emotion.classifier import EmotionClassifier

    return EmotionClassifier.from_bundle(DEMO_BUNDLE, threads=1)


@pytest.fixture(scope="session")
def scored_catalog(local_aws: LocalAws, demo_classifier: Any) -> Any:
    """TEST_SONGS scored with the demo model, written to SongsTable and published as the catalog
    snapshot the recommend handler serves; returns the ScoredSong list."""
    from moodtune.catalog import S3Objects, write_songs
    from moodtune.catalog.ingest import score_songs
    from moodtune.catalog.publish import publish_catalog

    songs = score_songs(demo_classifier, TEST_SONGS)
    table = local_aws.resource().Table(local_aws.songs_table)
    write_songs(table, demo_classifier.model_version, songs)
    objects = S3Objects(local_aws.s3(), local_aws.snapshot_bucket)
    assert publish_catalog(table, objects, demo_classifier.model_version).published
    return songs


@pytest.fixture(scope="session")
def handlers(local_aws: LocalAws, scored_catalog: Any) -> Any:
    """The two handler modules, imported after the environment points at the local endpoint."""
    from moodtune import service

    service.reset()
    recommend_app = importlib.import_module("recommend.app")
    feedback_app = importlib.import_module("feedback.app")
    return type("Handlers", (), {"recommend": recommend_app, "feedback": feedback_app})


@pytest.fixture(autouse=True)
def _reset_metrics() -> Iterator[None]:
    """Powertools keeps metrics and dimensions at class level: start every test clean."""
    metrics = Metrics()
    metrics.clear_metrics()
    metrics.clear_default_dimensions()
    yield
    metrics.clear_metrics()
    metrics.clear_default_dimensions()


@dataclass
class LambdaContextStub:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name: str = "moodtune-test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:moodtune-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def http_api_event(
    method: str,
    path: str,
    body: str | bytes | dict | list | None = None,
    *,
    headers: dict[str, str] | None = None,
    base64_body: bool = False,
    request_id: str | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as the real service sends it."""
    if isinstance(body, dict | list):
        body = json.dumps(body, ensure_ascii=False)
    all_headers = {"content-type": "application/json", "user-agent": "pytest"}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    if isinstance(body, bytes) or base64_body:
        raw = body if isinstance(body, bytes) else (body or "").encode()
        body, base64_body = base64.b64encode(raw).decode("ascii"), True
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": request_id or uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body,
        "isBase64Encoded": base64_body,
    }


@dataclass
class ApiAnswer:
    status: int
    headers: dict[str, str]
    body: Any


@pytest.fixture(scope="session")
def test_songs() -> list[dict[str, Any]]:
    """TEST_SONGS (as a fixture: test modules cannot import conftest reliably)."""
    return TEST_SONGS


@pytest.fixture(scope="session")
def http_event() -> Callable[..., dict[str, Any]]:
    """The API Gateway HTTP API event builder, for tests that need to edit the raw event."""
    return http_api_event


@pytest.fixture
def lambda_context() -> LambdaContextStub:
    return LambdaContextStub()


@pytest.fixture
def invoke() -> Callable[..., ApiAnswer]:
    """Call a handler module's lambda_handler with an HTTP API event; returns status, headers, JSON body."""

    def _invoke(module: Any, method: str, path: str, body: Any = None, **kwargs: Any) -> ApiAnswer:
        answer = module.lambda_handler(http_api_event(method, path, body, **kwargs), LambdaContextStub())
        raw = answer.get("body") or ""
        if answer.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode()
        headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
        return ApiAnswer(answer["statusCode"], headers, json.loads(raw) if raw else None)

    return _invoke


def _dynamodb_at(endpoint_url: str) -> Any:
    from moodtune.service import DYNAMODB_CONFIG

    return boto3.resource(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=DYNAMODB_CONFIG,
    )


@pytest.fixture
def unreachable_dynamodb() -> Any:
    """A DynamoDB resource (the handlers' retry config) on a port where nothing listens: refused."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return _dynamodb_at(f"http://127.0.0.1:{port}")


@pytest.fixture
def hung_dynamodb() -> Iterator[Any]:
    """A DynamoDB resource (the handlers' retry config) on an endpoint that accepts connections and
    never answers: every call runs into the read timeout."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # the kernel completes the handshakes; nobody ever reads or answers
        yield _dynamodb_at(f"http://127.0.0.1:{listener.getsockname()[1]}")
