"""The deploy-time apply: its inputs read at synth and its custom resource handler.

The handler talks to ECS only through `run_task` and `describe_tasks`; the tests hand it a
small in-memory ECS that records what it was asked and stops the task with a given exit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from adstream.infra.iam import APPLY_CLUSTER_ACTIONS, APPLY_QUOTA_ACTIONS, KafkaRoles
from adstream.infra.kafka_apply import (
    DesiredStateFileError,
    apply_command,
    desired_state_files,
    desired_topics,
    manages_quotas,
    state_digest,
)
from adstream.infra.kafka_apply_handler.index import ApplyTaskError, handle
from adstream.infra.profiles import parse_profile
from tests.infra.conftest import shipped_data

pytestmark = pytest.mark.infra

EVENT = {
    "RequestType": "Create",
    "ResourceProperties": {
        "Cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/c",
        "TaskDefinition": "arn:aws:ecs:eu-west-1:123456789012:task-definition/apply:3",
        "Subnets": ["subnet-1", "subnet-2"],
        "SecurityGroups": ["sg-1"],
        "LogGroup": "apply-logs",
    },
}
TASK = "arn:aws:ecs:eu-west-1:123456789012:task/c/abc"


class Ecs:
    """Runs one task that stops after `polls` describe calls with `exit_code`."""

    def __init__(self, exit_code: int | None = 0, polls: int = 2) -> None:
        self.exit_code, self.polls = exit_code, polls
        self.runs: list[dict[str, Any]] = []

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        self.runs.append(kwargs)
        return {"tasks": [{"taskArn": TASK}], "failures": []}

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs == {"cluster": EVENT["ResourceProperties"]["Cluster"], "tasks": [TASK]}
        self.polls -= 1
        if self.polls > 0:
            return {"tasks": [{"lastStatus": "RUNNING"}]}
        return {
            "tasks": [
                {
                    "lastStatus": "STOPPED",
                    "stoppedReason": "Essential container in task exited",
                    "containers": [{"exitCode": self.exit_code}],
                }
            ]
        }


def _plenty() -> int:
    return 600_000


def test_create_runs_the_task_in_the_given_network_and_waits_for_exit_0() -> None:
    ecs = Ecs(exit_code=0, polls=3)
    response = handle(EVENT, ecs, _plenty, sleep=lambda _: None)
    assert response["Data"] == {"TaskArn": TASK}
    (run,) = ecs.runs
    assert run["taskDefinition"] == EVENT["ResourceProperties"]["TaskDefinition"]
    assert run["launchType"] == "FARGATE"
    assert run["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": ["subnet-1", "subnet-2"],
        "securityGroups": ["sg-1"],
        "assignPublicIp": "DISABLED",
    }
    assert ecs.polls == 0


@pytest.mark.parametrize("code", [1, None])
def test_a_failed_or_killed_apply_fails_the_resource(code: int | None) -> None:
    """Exit 1 is `kafka apply` refusing the plan; no exit code is a task that never ran."""
    with pytest.raises(ApplyTaskError, match="apply-logs"):
        handle(EVENT, Ecs(exit_code=code), _plenty, sleep=lambda _: None)


def test_an_apply_still_running_at_the_lambda_deadline_fails_with_a_message() -> None:
    budget = iter([120_000, 60_000, 20_000])
    with pytest.raises(ApplyTaskError, match="still running"):
        handle(EVENT, Ecs(polls=100), lambda: next(budget), sleep=lambda _: None)


def test_delete_runs_nothing() -> None:
    ecs = Ecs()
    event = {**EVENT, "RequestType": "Delete", "PhysicalResourceId": "x/kafka-apply"}
    assert handle(event, ecs, _plenty) == {"PhysicalResourceId": "x/kafka-apply"}
    assert ecs.runs == []


def test_inputs_come_from_deploy_kafka_yaml_and_the_profiles_overlay() -> None:
    dev = parse_profile(shipped_data("dev"))
    files = desired_state_files(dev)
    assert [f.name for f in files] == ["kafka.yaml", "kafka.dev.yaml"]
    assert desired_topics(files) == ["ad-events", "ad-events.dlq", "adstream-iceberg-control"]
    assert apply_command(dev) == ["kafka", "apply", "--env", "dev"]
    serverless = parse_profile(shipped_data("serverless"))
    assert apply_command(serverless) == ["kafka", "apply"]


def test_a_missing_overlay_is_refused_at_synth() -> None:
    data = shipped_data("dev")
    data["kafka_apply"]["env"] = "staging"
    with pytest.raises(DesiredStateFileError, match=r"kafka\.staging\.yaml"):
        desired_state_files(parse_profile(data))


def test_the_digest_follows_every_files_content(tmp_path: Path) -> None:
    base, overlay = tmp_path / "kafka.yaml", tmp_path / "kafka.dev.yaml"
    base.write_text(yaml.safe_dump({"topics": {"a": {"partitions": 1}}}))
    overlay.write_text("{}\n")
    before = state_digest([base, overlay])
    overlay.write_text(yaml.safe_dump({"topics": {"a": {"partitions": 2}}}))
    assert state_digest([base, overlay]) != before


def test_manages_quotas_follows_the_merged_files(tmp_path: Path) -> None:
    base, overlay = tmp_path / "kafka.yaml", tmp_path / "kafka.prod.yaml"
    base.write_text("topics: {}\n")
    overlay.write_text("users: {}\n")
    assert not manages_quotas([base, overlay])
    overlay.write_text("quotas:\n  client-id=<default>: {request_percentage: 50}\n")
    assert manages_quotas([base, overlay])
    base.write_text("quotas: {}\n")
    overlay.write_text("quotas: null\n")  # the overlay drops the section
    assert not manages_quotas([base, overlay])


@pytest.mark.parametrize("quotas", [False, True], ids=["no-quotas", "quotas"])
def test_the_apply_role_may_change_quotas_only_when_the_file_has_them(quotas: bool) -> None:
    stack = Stack(App(), "S")
    profile = parse_profile(shipped_data("prod"), "prod")
    arn = "arn:aws:kafka:eu-west-1:123456789012:cluster/adstream-prod/abc-1"
    KafkaRoles(
        stack, "Iam", profile=profile, cluster_arn=arn, apply_topics=["t"], apply_quotas=quotas
    )
    (statements,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for k, r in Template.from_stack(stack).to_json()["Resources"].items()
        if k.startswith("IamKafkaApplyDefaultPolicy")
    ]
    cluster_actions = set(statements[0]["Action"])
    assert set(APPLY_CLUSTER_ACTIONS) <= cluster_actions
    assert (set(APPLY_QUOTA_ACTIONS) <= cluster_actions) is quotas
