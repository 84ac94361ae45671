"""Deploy-time ordering: what CloudFormation creates before what (issue 18, deploy blockers)."""

from __future__ import annotations

import pytest

from tests.infra.conftest import Synth, SynthCache

pytestmark = pytest.mark.infra

ALL = ("dev", "prod", "serverless", "variant")
CLUSTER_TYPES = ("AWS::MSK::Cluster", "AWS::MSK::ServerlessCluster")


def _cluster_id(s: Synth) -> str:
    (logical,) = [k for t in CLUSTER_TYPES for k in s.resources(t)]
    return logical


@pytest.mark.parametrize("name", ALL)
def test_bootstrap_lookup_policy_exists_before_the_cluster_does(
    synth: SynthCache, name: str
) -> None:
    """The lookup runs the moment the cluster is created; its IAM policy must not wait for
    the cluster (ARN pattern from the name), so IAM has propagated by then (aws-cdk #37085)."""
    s = synth(name)
    cluster = _cluster_id(s)
    (lookup,) = s.resources("Custom::AWS")
    (policy,) = [
        k
        for k in s.resources("AWS::IAM::Policy")
        if k.startswith("BootstrapLookupCustomResourcePolicy")
    ]
    assert policy in s.dependencies(lookup)
    assert cluster in s.dependencies(lookup)
    assert cluster not in s.dependencies(policy)
    (statement,) = s.template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "kafka:GetBootstrapBrokers"
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:kafka:${AWS::Region}:${AWS::AccountId}:cluster/"
        f"{s.profile.cluster.name}/*"
    }


def _apply_run(s: Synth) -> str:
    (run,) = s.resources("Custom::KafkaApply")
    return run


@pytest.mark.parametrize("name", ALL)
def test_kafka_apply_runs_after_the_cluster_and_before_both_services(
    synth: SynthCache, name: str
) -> None:
    s = synth(name)
    run = _apply_run(s)
    assert _cluster_id(s) in s.dependencies(run)
    (policy,) = [k for k in s.resources("AWS::IAM::Policy") if k.startswith("IamKafkaApply")]
    assert policy in s.dependencies(run)
    assert _cluster_id(s) not in s.dependencies(policy)  # created early: no IAM race
    for service in s.resources("AWS::ECS::Service"):
        assert run in s.template["Resources"][service]["DependsOn"], service
    if s.profile.cluster.auth.scram:  # the users exist before anything is applied for them
        (association,) = s.resources("AWS::MSK::BatchScramSecret")
        assert association in s.dependencies(run)


@pytest.mark.parametrize("name", ["dev", "variant"])
def test_kafka_apply_task_runs_the_file_as_the_iam_apply_role(synth: SynthCache, name: str) -> None:
    """It connects over IAM whatever the services use: only an IAM principal can create the
    first ACLs on MSK (no super.users), and the SCRAM services need those ACLs."""
    s = synth(name)
    run = s.template["Resources"][_apply_run(s)]["Properties"]
    task = s.template["Resources"][run["TaskDefinition"]["Ref"]]["Properties"]
    (container,) = task["ContainerDefinitions"]
    assert container["EntryPoint"] == ["adstream"]
    assert container["Command"] == ["kafka", "apply", "--env", "dev"]
    env = {item["Name"]: item["Value"] for item in container["Environment"]}
    (lookup,) = s.resources("Custom::AWS")
    assert env["ADSTREAM_KAFKA_BOOTSTRAP_SERVERS"] == {
        "Fn::GetAtt": [lookup, "BootstrapBrokerStringSaslIam"]
    }
    assert env["ADSTREAM_KAFKA_SECURITY"] == "iam"
    assert "--allow-delete" not in container["Command"]
    assert task["TaskRoleArn"]["Fn::GetAtt"][0].startswith("IamKafkaApply")
    assert run["Subnets"]
    assert run["SecurityGroups"] == [
        {"Fn::GetAtt": [k, "GroupId"]}
        for k in s.resources("AWS::EC2::SecurityGroup")
        if k.startswith("SecurityGroupsClients")
    ]
    assert len(run["DesiredState"]) == 64  # a new file content re-runs the apply


def test_kafka_apply_role_is_limited_to_the_files_topics_and_acls(synth: SynthCache) -> None:
    s = synth("prod")
    (policy,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for k, r in s.resources("AWS::IAM::Policy").items()
        if k.startswith("IamKafkaApplyDefaultPolicy")
    ]
    resources = [statement["Resource"]["Fn::Sub"] for statement in policy]
    prefix = "arn:${AWS::Partition}:kafka:${AWS::Region}:${AWS::AccountId}:"
    assert resources[0] == f"{prefix}cluster/adstream-prod/*"
    assert policy[0]["Action"] == [
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeCluster",
        "kafka-cluster:AlterCluster",
    ]
    assert resources[1:] == [  # what deploy/kafka.yaml names
        f"{prefix}topic/adstream-prod/*/ad-events",
        f"{prefix}topic/adstream-prod/*/ad-events.dlq",
        f"{prefix}topic/adstream-prod/*/adstream-iceberg-control",  # the Iceberg sink's
    ]
    actions = {a for statement in policy for a in statement["Action"]}
    assert not {a for a in actions if "Delete" in a or "Data" in a}


def test_kafka_apply_handler_may_run_only_its_task_on_its_cluster(synth: SynthCache) -> None:
    s = synth("dev")
    run = s.template["Resources"][_apply_run(s)]["Properties"]
    (statements,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for k, r in s.resources("AWS::IAM::Policy").items()
        if k.startswith("KafkaApplyHandlerServiceRoleDefaultPolicy")
    ]
    by_action = {str(st["Action"]): st for st in statements}
    run_task = by_action["ecs:RunTask"]
    assert run_task["Resource"] == run["TaskDefinition"]
    assert run_task["Condition"] == {"ArnEquals": {"ecs:cluster": run["Cluster"]}}
    assert by_action["ecs:DescribeTasks"]["Condition"] == run_task["Condition"]
    passed = by_action["iam:PassRole"]["Resource"]
    task = s.template["Resources"][run["TaskDefinition"]["Ref"]]["Properties"]
    assert passed == [task["TaskRoleArn"], task["ExecutionRoleArn"]]
