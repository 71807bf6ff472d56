"""The local stack's handler environment: what template.yaml sets in AWS, plus the local endpoint."""

from pathlib import Path

from infra.local.aws import load_template
from infra.local.stack import StackConfig, handler_environment

ROOT = Path(__file__).resolve().parents[3]


def _template_threads() -> str:
    template = load_template(ROOT / "template.yaml")
    return template["Resources"]["RecommendFunction"]["Properties"]["Environment"]["Variables"][
        "ORT_INTRA_OP_THREADS"
    ]


def test_the_handlers_run_with_one_onnxruntime_thread_as_in_aws() -> None:
    env = handler_environment(StackConfig(), "http://127.0.0.1:5000", environ={})
    assert env["ORT_INTRA_OP_THREADS"] == _template_threads() == "1"


def test_the_users_onnxruntime_threads_win() -> None:
    env = handler_environment(StackConfig(), "http://127.0.0.1:5000", environ={"ORT_INTRA_OP_THREADS": "4"})
    assert env["ORT_INTRA_OP_THREADS"] == "4"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"


def test_the_handlers_serve_the_snapshot_bucket_the_stack_publishes_to() -> None:
    config = StackConfig.from_env({"SNAPSHOT_BUCKET": "moodtune-snapshots-x"})
    env = handler_environment(config, "http://127.0.0.1:5000", environ={})
    assert env["SNAPSHOT_BUCKET"] == config.snapshot_bucket == "moodtune-snapshots-x"
    template = load_template(ROOT / "template.yaml")
    variables = template["Resources"]["RecommendFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SNAPSHOT_BUCKET"] == {"Ref": "SnapshotBucket"}
