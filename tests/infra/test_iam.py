"""IAM: exact Kafka data-plane actions on exact MSK resource ARNs, never a wildcard action."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import SynthCache

pytestmark = pytest.mark.infra

ALL = ("dev", "prod", "serverless", "variant")
CLUSTER_TYPE = {"serverless": "AWS::MSK::ServerlessCluster"}


def _cluster_id(s: Any, name: str) -> str:
    (logical,) = s.resources(CLUSTER_TYPE.get(name, "AWS::MSK::Cluster"))
    return str(logical)


def _cluster_arn(name: str, cluster: str) -> dict[str, Any]:
    """Provisioned: `Ref` is the ARN; serverless: the documented `Arn` attribute."""
    if name == "serverless":
        return {"Fn::GetAtt": [cluster, "Arn"]}
    return {"Ref": cluster}


def _arn(s: Any, cluster: str, kind: str, resource: str) -> dict[str, Any]:
    return {
        "Fn::Sub": [
            "arn:${AWS::Partition}:kafka:${AWS::Region}:${AWS::AccountId}:"
            f"{kind}/{s.profile.cluster.name}/${{ClusterUuid}}/{resource}",
            {
                "ClusterUuid": {
                    "Fn::Select": [2, {"Fn::Split": ["/", _cluster_arn(s.profile.name, cluster)]}]
                }
            },
        ]
    }


def _statements(s: Any, role_prefix: str) -> list[tuple[tuple[str, ...], Any]]:
    (policy,) = [
        r["Properties"]
        for k, r in s.resources("AWS::IAM::Policy").items()
        if k.startswith(f"Iam{role_prefix}DefaultPolicy")
    ]
    out = []
    for statement in policy["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        out.append(
            (tuple([actions] if isinstance(actions, str) else actions), statement["Resource"])
        )
    return out


@pytest.mark.parametrize("name", ALL)
def test_producer_role(synth: SynthCache, name: str) -> None:
    s = synth(name)
    cluster = _cluster_id(s, name)
    assert _statements(s, "Producer") == [
        (
            ("kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently"),
            _cluster_arn(name, cluster),
        ),
        (
            (
                "kafka-cluster:DescribeTopic",
                "kafka-cluster:DescribeTopicDynamicConfiguration",
                "kafka-cluster:WriteData",
            ),
            _arn(s, cluster, "topic", "ad-events"),
        ),
    ]


@pytest.mark.parametrize("name", ALL)
def test_aggregator_role(synth: SynthCache, name: str) -> None:
    s = synth(name)
    cluster = _cluster_id(s, name)
    assert _statements(s, "Aggregator") == [
        (
            ("kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently"),
            _cluster_arn(name, cluster),
        ),
        (
            (
                "kafka-cluster:DescribeTopic",
                "kafka-cluster:DescribeTopicDynamicConfiguration",
                "kafka-cluster:ReadData",
            ),
            _arn(s, cluster, "topic", "ad-events"),
        ),
        (
            (
                "kafka-cluster:DescribeTopic",
                "kafka-cluster:DescribeTopicDynamicConfiguration",
                "kafka-cluster:WriteData",
            ),
            _arn(s, cluster, "topic", "ad-events.dlq"),
        ),
        (
            ("kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"),
            _arn(s, cluster, "group", "adstream-aggregator"),
        ),
    ]


def test_admin_role_is_scoped_to_this_cluster_and_needs_mfa(synth: SynthCache) -> None:
    s = synth("prod")
    cluster = _cluster_id(s, "prod")
    statements = _statements(s, "Admin")
    assert [resource for _, resource in statements] == [
        _cluster_arn("prod", cluster),
        _arn(s, cluster, "topic", "*"),
        _arn(s, cluster, "group", "*"),
    ]
    assert "kafka-cluster:CreateTopic" in statements[1][0]
    assert "kafka-cluster:ReadData" not in {a for actions, _ in statements for a in actions}
    (admin,) = [r for k, r in s.resources("AWS::IAM::Role").items() if k.startswith("IamAdmin")]
    (trust,) = admin["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_task_roles_trust_ecs_tasks_only(synth: SynthCache, name: str) -> None:
    s = synth(name)
    for prefix in ("IamProducer", "IamAggregator"):
        (role,) = [r for k, r in s.resources("AWS::IAM::Role").items() if k.startswith(prefix)]
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}


@pytest.mark.parametrize("name", ALL)
def test_no_wildcard_actions_anywhere(synth: SynthCache, name: str) -> None:
    s = synth(name)
    actions: list[str] = []
    for policy in s.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            value = statement["Action"]
            actions.extend([value] if isinstance(value, str) else value)
    assert any(a.startswith("kafka-cluster:") for a in actions)
    assert "kafka-cluster:*" not in actions
    assert not [a for a in actions if a.endswith("*") and not a.startswith("kms:GenerateDataKey")]
