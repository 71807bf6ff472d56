"""Every file in events/ through its handler, the way `sam local invoke` runs it.

Each function runs in a fresh process laid out like its deployment: RecommendFunction like its image
(the Dockerfile's COPY lines replayed into a temporary /var/task and /opt/model), FeedbackFunction like
a zip function (CodeUri in /var/task, the layer's ContentUri in /opt/python). Its environment is
events/env.json's entry for the function, pointed at this test's moto server and tables instead of
host.docker.internal. The handlers' boto3 calls go over HTTP to moto in server mode.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from infra.local.aws import create_tables, load_template
from infra.local.front import load_routes

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TEMPLATE = load_template(ROOT / "template.yaml")
DEMO_SONGS = 20  # songs of data/demo/songs.jsonl scored for the test: enough for every event, quick

FUNCTION_OF_DIR = {"recommend": "RecommendFunction", "feedback": "FeedbackFunction"}
# The Lambda runtime's Python (3.12) with nothing but each function's own dependencies: the image's
# requirements.txt, the layer's requirements.txt (`make lambda-venvs`, part of `make test`). The laid-out
# handlers run on them, so a missing dependency or 3.11-only code fails here, not in AWS.
LAMBDA_PYTHON = {
    "RecommendFunction": ROOT / ".venv-lambda" / "image" / "bin" / "python",
    "FeedbackFunction": ROOT / ".venv-lambda" / "layer" / "bin" / "python",
}
# What each event file must answer (every file in events/ must be listed here).
EXPECTED = {
    "recommend/recommendations.json": 201,
    "recommend/recommendations-dominant.json": 201,
    "recommend/recommendations-base64.json": 201,
    "recommend/recommendations-invalid.json": 400,
    "recommend/emotions.json": 200,
    "recommend/song.json": 200,
    "recommend/song-missing.json": 404,
    "recommend/health.json": 200,
    "recommend/openapi.json": 200,
    "feedback/feedback.json": 404,  # its placeholder id names no recommendation
}

# Runs inside the laid-out process: import the handler as Lambda does, invoke each event, print answers.
RUNNER = """
import importlib, json, sys
spec = json.loads(sys.stdin.read())
module_name, _, function_name = spec["handler"].rpartition(".")
handler = getattr(importlib.import_module(module_name), function_name)

class Context:
    function_name = spec["function"]
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:ap-northeast-2:123456789012:function:" + spec["function"]
    aws_request_id = "11111111-2222-3333-4444-555555555555"
    def get_remaining_time_in_millis(self):
        return 10_000

answers = {name: handler(event, Context()) for name, event in spec["events"].items()}
print("@@ANSWERS@@" + json.dumps(answers, ensure_ascii=False))
"""


def event_files() -> dict[str, dict[str, Any]]:
    return {
        str(path.relative_to(EVENTS)): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(EVENTS.rglob("*.json"))
        if path.name != "env.json"
        # Not HTTP API events: tests/integration/test_export_feedback.py and test_ingest_worker.py run those.
        and path.parent.name not in ("export_feedback", "ingest")
    }


def replay_dockerfile(dockerfile: Path, context: Path, task_root: Path, fs_root: Path) -> dict[str, str]:
    """Copy what the Dockerfile's COPY lines copy (dependencies aside) into a fake filesystem.

    ``${LAMBDA_TASK_ROOT}`` becomes ``task_root``, other absolute paths land under ``fs_root``.
    Returns the image's ENV, with paths mapped the same way.
    """
    args = {"LAMBDA_TASK_ROOT": str(task_root)}
    env: dict[str, str] = {}

    def mapped(destination: str) -> Path:
        destination = destination.replace("${LAMBDA_TASK_ROOT}", str(task_root))
        return (
            Path(destination) if destination.startswith(str(task_root)) else fs_root / destination.lstrip("/")
        )

    for line in re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8")).splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            args[name] = TEMPLATE["Parameters"]["ModelDir"]["Default"] if name == "MODEL_DIR" else value
        elif instruction == "COPY":
            *sources, destination = rest.split()
            for source in sources:
                source = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], source)
                src = context / source
                if src.name == "requirements.txt":
                    continue  # the dependencies: this test's venv has them
                dest = mapped(destination)
                if src.is_dir():
                    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target = dest / src.name if destination.endswith("/") else dest
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, target)
        elif instruction == "ENV":
            name, value = rest.split("=", 1)
            env[name] = str(mapped(value)) if value.startswith("/") else value
        elif instruction == "CMD":
            env["_HANDLER"] = json.loads(rest)[0]
    return env


def lay_out(function: str, root: Path) -> tuple[list[Path], dict[str, str], str]:
    """(sys.path entries, image ENV, handler) of ``function`` laid out under ``root``."""
    resource = TEMPLATE["Resources"][function]
    task_root = root / "var" / "task"
    if resource["Properties"].get("PackageType") == "Image":
        metadata = resource["Metadata"]
        context = ROOT / metadata["DockerContext"]
        env = replay_dockerfile(context / metadata["Dockerfile"], context, task_root, root)
        return [task_root], env, env.pop("_HANDLER")
    props = resource["Properties"]
    shutil.copytree(ROOT / props["CodeUri"], task_root, ignore=shutil.ignore_patterns("__pycache__"))
    opt_python = root / "opt" / "python"
    for layer in props.get("Layers", []):
        content = TEMPLATE["Resources"][layer["Ref"]]["Properties"]["ContentUri"]
        shutil.copytree(
            ROOT / content, opt_python, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    return [task_root, opt_python], {}, props["Handler"]


def invoke_all(
    function: str, events: dict[str, dict[str, Any]], env: dict[str, str], root: Path
) -> dict[str, dict[str, Any]]:
    """Invoke ``events`` in one fresh process laid out like ``function``; answers by event name."""
    paths, image_env, handler = lay_out(function, root / function)
    process_env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(str(p) for p in paths),
        "AWS_SAM_LOCAL": "true",  # as sam local sets it (Powertools then skips X-Ray)
        "AWS_REGION": "ap-northeast-2",
        "AWS_DEFAULT_REGION": "ap-northeast-2",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **image_env,
        **env,
    }
    spec = {"function": function, "handler": handler, "events": events}
    python = LAMBDA_PYTHON[function] if LAMBDA_PYTHON[function].exists() else Path(sys.executable)
    done = subprocess.run(
        [str(python), "-c", RUNNER],
        input=json.dumps(spec),
        cwd=paths[0],
        env=process_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{function} failed:\n{done.stderr[-3000:]}"
    if os.environ.get("MOODTUNE_DEBUG_EVENTS"):
        print(done.stderr)
    marker = next(line for line in done.stdout.splitlines() if line.startswith("@@ANSWERS@@"))
    return json.loads(marker.removeprefix("@@ANSWERS@@"))


@pytest.fixture(scope="module")
def tables(local_aws: Any, demo_classifier: Any) -> dict[str, str]:
    """This module's own tables and snapshot bucket on the session's moto server, with the first demo
    songs scored, written and published as the catalog snapshot."""
    from moodtune.catalog import S3Objects, write_songs
    from moodtune.catalog.ingest import score_songs
    from moodtune.catalog.publish import publish_catalog

    suffix = uuid.uuid4().hex[:8]
    names = {
        "SongsTable": f"moodtune-songs-events-{suffix}",
        "FeedbackTable": f"moodtune-feedback-events-{suffix}",
        "SnapshotBucket": f"moodtune-snapshots-events-{suffix}",
    }
    resource = local_aws.resource()
    create_tables(
        ROOT / "template.yaml",
        resource.meta.client,
        {k: v for k, v in names.items() if k != "SnapshotBucket"},
    )
    s3 = local_aws.s3()
    s3.create_bucket(
        Bucket=names["SnapshotBucket"], CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
    )
    catalog = [json.loads(line) for line in (ROOT / "data/demo/songs.jsonl").read_text("utf-8").splitlines()]
    # events/recommend/song.json must name a real demo song (sam local invoke runs it against make demo).
    wanted = json.loads((EVENTS / "recommend/song.json").read_text("utf-8"))["pathParameters"]["song_id"]
    named = [song for song in catalog if song["song_id"] == wanted]
    assert named, f"events/recommend/song.json names {wanted!r}, which data/demo/songs.jsonl does not have"
    songs = [*named, *(song for song in catalog if song["song_id"] != wanted)][:DEMO_SONGS]
    write_songs(
        resource.Table(names["SongsTable"]),
        demo_classifier.model_version,
        score_songs(demo_classifier, songs),
    )
    objects = S3Objects(s3, names["SnapshotBucket"])
    assert publish_catalog(
        resource.Table(names["SongsTable"]), objects, demo_classifier.model_version
    ).published
    return names


def function_env(function: str, endpoint_url: str, tables: dict[str, str]) -> dict[str, str]:
    """events/env.json's entry for ``function``, adapted from host.docker.internal to this test's moto."""
    env = json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))[function]
    adapted = dict(env, AWS_ENDPOINT_URL=endpoint_url)
    if "SONGS_TABLE" in adapted:
        adapted["SONGS_TABLE"] = tables["SongsTable"]
    if "FEEDBACK_TABLE" in adapted:
        adapted["FEEDBACK_TABLE"] = tables["FeedbackTable"]
    if "SNAPSHOT_BUCKET" in adapted:
        adapted["SNAPSHOT_BUCKET"] = tables["SnapshotBucket"]
    return adapted


def test_every_event_file_has_an_expectation_and_a_template_route() -> None:
    files = event_files()
    assert set(files) == set(EXPECTED)
    routes = {(r.key, r.function) for r in load_routes(TEMPLATE)}
    for name, event in files.items():
        function = FUNCTION_OF_DIR[name.split("/")[0]]
        assert (event["routeKey"], function) in routes, (
            f"{name}: {event['routeKey']} is no route of {function}"
        )
        assert event["version"] == "2.0" and event["rawPath"] == event["requestContext"]["http"]["path"]


@pytest.mark.parametrize("function", sorted(LAMBDA_PYTHON))
def test_the_handlers_run_on_python_3_12_with_only_their_own_dependencies(function: str) -> None:
    python = LAMBDA_PYTHON[function]
    assert python.exists(), f"{python} is missing: run `make lambda-venvs` (make test does)"
    version = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    )
    assert version.stdout.strip() == "(3, 12)"  # template.yaml: python3.12 and the 3.12 base image
    # Neither has the export-time stack; the zip function's layer has no model runtime either.
    absent = ["torch", "transformers", "optimum"] + (
        ["onnxruntime"] if function == "FeedbackFunction" else []
    )
    probe = "import importlib.util, sys; print([m for m in sys.argv[1:] if importlib.util.find_spec(m)])"
    found = subprocess.run([str(python), "-c", probe, *absent], capture_output=True, text=True)
    assert found.stdout.strip() == "[]", found.stderr


def test_events_through_their_handlers(local_aws: Any, tables: dict[str, str], tmp_path: Path) -> None:
    files = event_files()
    recommend_events = {k: v for k, v in files.items() if k.startswith("recommend/")}
    answers = invoke_all(
        "RecommendFunction",
        recommend_events,
        function_env("RecommendFunction", local_aws.endpoint_url, tables),
        tmp_path,
    )
    statuses = {name: answer["statusCode"] for name, answer in answers.items()}
    assert statuses == {name: EXPECTED[name] for name in recommend_events}

    bodies = {name: json.loads(answer["body"]) for name, answer in answers.items()}
    assert bodies["recommend/health.json"]["catalog_size"] == DEMO_SONGS
    recommendation = bodies["recommend/recommendations.json"]
    assert len(recommendation["songs"]) == 5
    dominant = bodies["recommend/recommendations-dominant.json"]
    assert 1 <= len(dominant["songs"]) <= 3  # the event's limit; and the text's emotion has songs
    assert {song["dominant"] for song in dominant["songs"]} == {dominant["emotion"]["dominant"]}
    assert (
        bodies["recommend/song.json"]["song_id"] == files["recommend/song.json"]["pathParameters"]["song_id"]
    )
    assert "errors" in bodies["recommend/recommendations-invalid.json"]
    # The OpenAPI document covers every route of the template (path parameter names aside), itself too.
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, operations in bodies["recommend/openapi.json"]["paths"].items()
        for method in operations
    }
    for route in load_routes(TEMPLATE):
        assert (route.method, re.sub(r"\{[^}]+\}", "{}", route.path)) in documented, route.key

    # The feedback event as shipped (a placeholder id) and with a real recommendation's id and song.
    feedback = files["feedback/feedback.json"]
    real = json.loads(
        json.dumps(feedback, ensure_ascii=False)
        .replace("REPLACE_WITH_RECOMMENDATION_ID", recommendation["recommendation_id"])
        .replace("REPLACE_WITH_SONG_ID", recommendation["songs"][0]["song_id"])
    )
    answers = invoke_all(
        "FeedbackFunction",
        {"feedback/feedback.json": feedback, "real": real},
        function_env("FeedbackFunction", local_aws.endpoint_url, tables),
        tmp_path,
    )
    assert answers["feedback/feedback.json"]["statusCode"] == EXPECTED["feedback/feedback.json"]
    assert answers["real"]["statusCode"] == 200, answers["real"]["body"]
    item = (
        local_aws.resource()
        .Table(tables["FeedbackTable"])
        .get_item(Key={"recommendation_id": recommendation["recommendation_id"]}, ConsistentRead=True)["Item"]
    )
    assert item["feedback"][recommendation["songs"][0]["song_id"]]["satisfied"] is True
