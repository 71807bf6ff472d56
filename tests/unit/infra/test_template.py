"""template.yaml against the tree: every path it names exists, its routes are the blueprint's, and the
environment it sets is the one the code reads (Settings, events/env.json)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.local.aws import load_template
from infra.local.front import function_sources, load_routes
from moodtune.catalog.ingest import IngestSettings
from moodtune.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}

BLUEPRINT_ROUTES = {
    ("POST", "/v1/recommendations"): "RecommendFunction",
    ("POST", "/v1/recommendations/{id}/feedback"): "FeedbackFunction",
    ("POST", "/v1/journeys"): "RecommendFunction",
    ("POST", "/v1/emotions"): "RecommendFunction",
    ("GET", "/v1/songs/{song_id}"): "RecommendFunction",
    ("GET", "/v1/health"): "RecommendFunction",
    ("GET", "/v1/openapi.json"): "RecommendFunction",
}


def defines_function(module_file: Path, name: str) -> bool:
    """True when the module defines ``name`` at top level (checked without importing it)."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name for node in tree.body
    )


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            pairs.append((instruction.upper(), args.strip()))
    return pairs


def test_routes_are_the_blueprints() -> None:
    routes = load_routes(TEMPLATE)
    assert {(r.method, r.path): r.function for r in routes} == BLUEPRINT_ROUTES
    assert len(routes) == len(BLUEPRINT_ROUTES)  # no route declared twice
    for resource in FUNCTIONS.values():
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                assert event["Properties"]["ApiId"] == {"Ref": "HttpApi"}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_handler_resolves_against_the_tree(logical_id: str) -> None:
    source = function_sources(TEMPLATE, ROOT)[logical_id]
    assert source.module_file.is_file(), f"{logical_id}: {source.module_file} does not exist"
    assert defines_function(source.module_file, source.attribute), (
        f"{logical_id}: {source.module_file.name} defines no {source.attribute}()"
    )


def test_zip_functions_code_and_layers_exist() -> None:
    for logical_id, resource in FUNCTIONS.items():
        props = resource["Properties"]
        if props.get("PackageType") == "Image":
            continue
        assert (ROOT / props["CodeUri"]).is_dir(), logical_id
        assert props["Runtime"] == "python3.12"
        for layer in props.get("Layers", []):
            layer_resource = RESOURCES[layer["Ref"]]
            assert layer_resource["Type"] == "AWS::Serverless::LayerVersion"
            content = ROOT / layer_resource["Properties"]["ContentUri"]
            assert (content / "moodtune" / "__init__.py").is_file(), f"{content} lacks the moodtune package"
            assert (content / "requirements.txt").is_file()
            assert layer_resource["Metadata"]["BuildMethod"] == "python3.12"
            assert "python3.12" in layer_resource["Properties"]["CompatibleRuntimes"]


def test_image_function_dockerfile_and_copies_resolve() -> None:
    resource = FUNCTIONS["RecommendFunction"]
    metadata = resource["Metadata"]
    assert resource["Properties"]["PackageType"] == "Image"
    context = ROOT / metadata["DockerContext"]
    dockerfile = context / metadata["Dockerfile"]
    assert dockerfile.is_file()

    model_dir_default = TEMPLATE["Parameters"]["ModelDir"]["Default"]
    assert metadata["DockerBuildArgs"] == {"MODEL_DIR": {"Ref": "ModelDir"}}
    instructions = dockerfile_instructions(dockerfile)
    assert instructions[0] == ("FROM", "public.ecr.aws/lambda/python:3.12")
    args = dict(a.split("=", 1) for i, a in instructions if i == "ARG" and "=" in a)
    assert args["MODEL_DIR"] == model_dir_default == "models/demo"

    copies = [a.split() for i, a in instructions if i == "COPY"]
    assert copies, "the Dockerfile copies nothing"
    for *sources, _destination in copies:
        for src in sources:
            path = context / src.replace("${MODEL_DIR}", model_dir_default)
            assert path.exists(), f"COPY source {src} -> {path} does not exist in the build context"
    copied = {src for *sources, _ in copies for src in sources}
    assert {"layers/shared/moodtune", "${MODEL_DIR}", "functions/recommend/app.py"} <= copied
    assert ("ENV", "MODEL_DIR=/opt/model") in instructions

    # .dockerignore keeps the context small but must not hide what the Dockerfile copies.
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    for needed in ("!functions/recommend/", "!layers/shared/moodtune/", "!models/"):
        assert needed in ignore


def requirement_names(path: Path) -> set[str]:
    """Distribution names in a requirements file (extras and pins dropped), lower-cased."""
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[\[=<>!~; ]", line, maxsplit=1)[0].lower())
    return names


def test_image_requirements_never_bring_torch() -> None:
    image = requirement_names(ROOT / "functions/recommend/requirements.txt")
    layer = requirement_names(ROOT / "layers/shared/requirements.txt")
    assert not {"torch", "transformers", "optimum", "optimum-onnx"} & (image | layer)
    assert {
        "onnxruntime",
        "tokenizers",
        "numpy",
        "aws-lambda-powertools",
        "pydantic",
        "pydantic-settings",
    } <= image
    # The zip functions' layer carries no model runtime.
    assert {"aws-lambda-powertools", "pydantic", "pydantic-settings"} <= layer
    assert not {"onnxruntime", "tokenizers"} & layer


def _declared_env(logical_id: str) -> dict[str, Any]:
    shared = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    own = FUNCTIONS[logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {**shared, **own}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_environment_names_are_the_settings_contract(logical_id: str) -> None:
    known = (
        {name.upper() for name in Settings.model_fields}
        | {f"INGEST_{n.upper()}" for n in IngestSettings.model_fields}
        | {
            "AWS_ENDPOINT_URL",
            "ORT_INTRA_OP_THREADS",
            "POWERTOOLS_SERVICE_NAME",
            "POWERTOOLS_METRICS_NAMESPACE",
            "POWERTOOLS_LOG_LEVEL",
        }
    )
    unknown = set(_declared_env(logical_id)) - known
    assert not unknown, f"{logical_id} sets variables nothing reads: {sorted(unknown)}"


def test_env_json_only_overrides_declared_variables() -> None:
    """`sam local invoke --env-vars` only overrides what the template declares: a stray name is a no-op."""
    env = json.loads((ROOT / "events/env.json").read_text(encoding="utf-8"))
    assert set(env) == set(FUNCTIONS)
    for logical_id, variables in env.items():
        undeclared = set(variables) - set(_declared_env(logical_id))
        assert not undeclared, f"events/env.json sets {sorted(undeclared)} that {logical_id} does not declare"
        assert variables["AWS_ENDPOINT_URL"].startswith("http://host.docker.internal:")


# The services each function's own statements may call (tests/unit/infra/test_template_snapshot.py
# checks the snapshot grants resource by resource).
STATEMENT_SERVICES = {
    "ExportFeedbackFunction": ("dynamodb:", "s3:"),
    "RecommendFunction": ("dynamodb:", "s3:"),
    "CatalogPublisherFunction": ("dynamodb:", "s3:", "sqs:"),
}


def test_policies_are_scoped_to_tables() -> None:
    for logical_id, resource in FUNCTIONS.items():
        for policy in resource["Properties"].get("Policies", []):
            (name, body), *_ = policy.items()
            if name == "Statement":
                for statement in body:
                    assert statement["Resource"] != "*", logical_id
                    actions = statement["Action"]
                    actions = [actions] if isinstance(actions, str) else actions
                    services = STATEMENT_SERVICES.get(logical_id, "dynamodb:")
                    assert all(a.startswith(services) and "*" not in a for a in actions), logical_id
            else:
                assert name in {"DynamoDBReadPolicy", "DynamoDBWritePolicy", "DynamoDBCrudPolicy"}
                assert body["TableName"]["Ref"] in {"SongsTable", "FeedbackTable"}
    # Serving no longer reads SongsTable at all: its catalog comes from the snapshot.
    recommend = FUNCTIONS["RecommendFunction"]["Properties"]
    assert "SongsTable" not in json.dumps(recommend["Policies"])
    assert "SONGS_TABLE" not in recommend["Environment"]["Variables"]


def test_cors_throttling_and_outputs() -> None:
    api = RESOURCES["HttpApi"]["Properties"]
    assert api["CorsConfiguration"]["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    assert TEMPLATE["Parameters"]["AllowedOrigins"]["Type"] == "CommaDelimitedList"
    assert {"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(api["DefaultRouteSettings"])
    assert set(api["RouteSettings"]) <= {f"{m} {p}" for m, p in BLUEPRINT_ROUTES}
    assert {"ApiUrl", "SongsTableName", "FeedbackTableName"} <= set(TEMPLATE["Outputs"])
    for name in ("Stage", "AllowedOrigins", "LogLevel", "StoreUserText", "TextRetentionDays", "ModelDir"):
        assert name in TEMPLATE["Parameters"]


def test_zip_function_imports_only_what_its_layer_ships() -> None:
    """Import the feedback handler in a fresh process and list the third-party packages it loaded:
    everything must come from the Lambda runtime (boto3), the layer's requirements, or the stdlib."""
    layer = requirement_names(ROOT / "layers/shared/requirements.txt")
    script = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('feedback_app', 'functions/feedback/app.py')\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names))))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "layers/shared"),
        "AWS_DEFAULT_REGION": "ap-northeast-2",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # never contacted at import
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    model_runtime = {"onnxruntime", "tokenizers", "torch", "transformers"}
    assert not loaded & model_runtime, f"the feedback function imports {sorted(loaded & model_runtime)}"
    not_shipped = {"numpy", "requests", "rich", "yaml", "tqdm", "moto"} - layer
    assert not loaded & not_shipped, f"imported but not in the layer: {sorted(loaded & not_shipped)}"


def test_dashboard_default_model_version_is_the_committed_demo_bundle() -> None:
    """The dashboard's satisfaction widget names a model version; its default must be the bundle we ship."""
    manifest = json.loads((ROOT / "models/demo/manifest.json").read_text(encoding="utf-8"))
    assert TEMPLATE["Parameters"]["CurrentModelVersion"]["Default"] == manifest["model_version"]


@pytest.mark.parametrize(
    ("variable", "parameter"), [("EXPLORE_SHARE", "ExploreShare"), ("EXPLORE_WINDOW", "ExploreWindow")]
)
def test_the_recommend_function_explores_as_its_parameters_say(variable: str, parameter: str) -> None:
    """EXPLORE_SHARE / EXPLORE_WINDOW come from template parameters whose whole range Settings accepts;
    EXPLORE_SEED is never set in AWS (each execution environment draws its own exploration)."""
    env = _declared_env("RecommendFunction")
    assert env[variable] == {"Ref": parameter}
    assert "EXPLORE_SEED" not in env
    spec = TEMPLATE["Parameters"][parameter]
    field = Settings.model_fields[variable.lower()]
    bounds = {type(m).__name__: m for m in field.metadata}
    for value in (spec["MinValue"], spec["MaxValue"], spec["Default"]):
        assert bounds["Ge"].ge <= float(value) <= bounds["Le"].le
    assert Settings(**{variable.lower(): spec["Default"]})  # the default passes validation
