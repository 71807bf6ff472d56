"""Reading the web bucket and distribution from the stack's Outputs."""

from __future__ import annotations

import pytest

from infra import deploy_web


def test_stack_without_web_outputs_is_refused_with_a_clear_message():
    class FakeCloudFormation:
        def describe_stacks(self, StackName):
            return {"Stacks": [{"Outputs": [{"OutputKey": "ApiUrl", "OutputValue": "https://x"}]}]}

    with pytest.raises(SystemExit, match="no WebBucketName output"):
        deploy_web.stack_target("moodtune-dev", FakeCloudFormation())


def test_stack_outputs_name_the_bucket_and_distribution():
    class FakeCloudFormation:
        def describe_stacks(self, StackName):
            outputs = {"WebBucketName": "b", "WebDistributionId": "E123", "ApiUrl": "https://x"}
            return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}

    assert deploy_web.stack_target("moodtune-dev", FakeCloudFormation()) == deploy_web.Target("b", "E123")


@pytest.mark.parametrize(
    ("env", "stack"), [("default", "moodtune-dev"), ("dev", "moodtune-dev"), ("prod", "moodtune-prod")]
)
def test_stack_name_and_region_come_from_samconfig(env, stack):
    assert deploy_web.samconfig_stack(env) == (stack, "ap-northeast-2")


def test_unknown_config_env_is_refused():
    with pytest.raises(SystemExit, match=r"no \[staging\] environment"):
        deploy_web.samconfig_stack("staging")
