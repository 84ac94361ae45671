"""Kafka as code at deploy time: `adstream kafka apply` of deploy/kafka.yaml, once per change.

Why an ECS task started by a custom resource: the apply needs the brokers, which are only
reachable inside the VPC, and the exact code and desired-state file of the image the
services run; a one-shot Fargate task of that image in the client security group has both
(a Lambda would need its own image and VPC wiring, CodeBuild a second build). A small
Lambda (custom resource, `kafka_apply_handler`) starts it and waits for its exit code.

Order: after the cluster and its bootstrap brokers (and the SCRAM secrets' association),
before both services, which depend on it: a refused or failed apply fails the deploy before
any client starts. It runs again whenever deploy/kafka*.yaml or the image changes (both
are properties of the resource). It connects as its own IAM task role: MSK has no
`super.users`, so only an IAM principal can create the first ACLs for SCRAM/mTLS users.
It never deletes (no `--allow-delete`): deletions stay a reviewed, manual run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from aws_cdk import CfnElement, CfnResource, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from adstream.infra.checks import acknowledge, acknowledge_wildcard_resource
from adstream.infra.clients import ENTRY_POINT, kafka_environment
from adstream.infra.profiles import PROJECT_ROOT, ClientAuth, Profile, ProfileError

DEPLOY_DIR = PROJECT_ROOT / "deploy"
HANDLER_DIR = Path(__file__).resolve().parent / "kafka_apply_handler"
CLIENT_ID = "adstream-kafka-apply"


class DesiredStateFileError(ProfileError):
    """deploy/kafka.yaml or the profile's overlay is missing or unreadable."""


def desired_state_files(profile: Profile) -> list[Path]:
    """deploy/kafka.yaml and, with `kafka_apply.env`, its overlay kafka.<env>.yaml."""
    env = profile.kafka_apply.env
    files = [DEPLOY_DIR / "kafka.yaml", *([DEPLOY_DIR / f"kafka.{env}.yaml"] if env else [])]
    for path in files:
        if not path.is_file():
            raise DesiredStateFileError(f"kafka_apply.env: no desired-state file {path}")
    return files


def desired_topics(files: list[Path]) -> list[str]:
    """Every topic any of the files names: the apply role may manage exactly these."""
    names: set[str] = set()
    for path in files:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names.update((document.get("topics") or {}).keys())
    return sorted(names)


def manages_quotas(files: list[Path]) -> bool:
    """Whether the merged desired state has a `quotas` section (then the apply reads and
    changes client quotas, and its role needs the cluster's dynamic-configuration actions)."""
    present = False
    for path in files:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if "quotas" in document:
            present = document["quotas"] is not None  # an overlay's `quotas: null` drops it
    return present


def topic_partitions(files: list[Path], topic: str) -> int | None:
    """`topic`'s partition count in the merged desired state (a later overlay wins)."""
    found = None
    for path in files:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        spec = (document.get("topics") or {}).get(topic) or {}
        if spec.get("partitions") is not None:
            found = int(spec["partitions"])
    return found


def state_digest(files: list[Path]) -> str:
    """Changes whenever a file changes, so the custom resource (and the apply) runs again."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def apply_command(profile: Profile) -> list[str]:
    env = profile.kafka_apply.env
    return ["kafka", "apply", *(["--env", env] if env else [])]


class KafkaApply(Construct):
    """The apply task definition, the custom resource that runs it, and `resource` to wait on."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        files: list[Path],
        cluster: ecs.ICluster,
        image: ecs.ContainerImage,
        role: iam.IRole,
        brokers: str,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        spec = profile.kafka_apply
        task = ecs.FargateTaskDefinition(
            self, "Task", cpu=spec.cpu, memory_limit_mib=spec.memory_mib, task_role=role
        )
        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        environment = kafka_environment(profile, brokers, CLIENT_ID, auth=ClientAuth.IAM)
        task.add_container(
            "apply",
            image=image,
            entry_point=list(ENTRY_POINT),
            command=apply_command(profile),
            environment=environment,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="kafka-apply", log_group=log_group),
        )
        acknowledge(
            task,
            "AwsSolutions-ECS2",
            "only non-secret Kafka connection settings are environment variables; the task "
            "authenticates with its IAM task role",
        )
        acknowledge(
            task,
            "AwsSolutions-IAM5[Resource::*]",
            "the execution role's ecr:GetAuthorizationToken cannot be scoped to a resource",
        )
        self.task = task
        handler = lambda_.Function(
            self,
            "Handler",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.on_event",
            code=lambda_.Code.from_asset(str(HANDLER_DIR), exclude=["__pycache__", "__init__.py"]),
            timeout=Duration.minutes(14),
            description="runs `adstream kafka apply` as a one-shot ECS task and waits for it",
        )
        handler.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[task.task_definition_arn],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            )
        )
        task_arns = Stack.of(self).format_arn(
            service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*"
        )
        handler.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks"],
                resources=[task_arns],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            )
        )
        pass_roles = [task.task_role.role_arn]
        if task.execution_role is not None:
            pass_roles.append(task.execution_role.role_arn)
        handler.add_to_role_policy(
            iam.PolicyStatement(actions=["iam:PassRole"], resources=pass_roles)
        )
        acknowledge(
            handler,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "the handler only writes its own logs besides RunTask/DescribeTasks; the managed "
            "basic-execution policy grants exactly that",
        )
        acknowledge_wildcard_resource(
            handler,
            task_arns,
            "DescribeTasks takes task ARNs that exist only once RunTask returns: the resource "
            "is every task of this one ECS cluster, and the condition pins the cluster",
        )
        provider = cr.Provider(self, "Provider", on_event_handler=handler)
        acknowledge(
            provider,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "CDK's custom resource framework function only writes its own logs and invokes "
            "the handler",
        )
        acknowledge_wildcard_resource(
            provider,
            f"{handler.function_arn}:*",
            "CDK's framework may invoke the handler and its versions (<arn>:*); nothing else",
        )
        for function in (handler, provider.node.find_child("framework-onEvent")):
            assert isinstance(function, lambda_.Function)
            _depend_on_policy_only(function)
        subnet_ids = cluster.vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids
        self.resource = CustomResource(
            self,
            "Run",
            service_token=provider.service_token,
            resource_type="Custom::KafkaApply",
            properties={
                "Cluster": cluster.cluster_arn,
                "TaskDefinition": task.task_definition_arn,
                "Subnets": subnet_ids,
                "SecurityGroups": [security_group.security_group_id],
                "LogGroup": log_group.log_group_name,
                "DesiredState": state_digest(files),
            },
        )


def _depend_on_policy_only(function: lambda_.Function) -> None:
    """Keep the function's DependsOn on its role's policy (it must hold its permissions when
    invoked) minus the role, which `Role: Fn::GetAtt` already orders (cfn-lint W3005)."""
    policy = function.role.node.try_find_child("DefaultPolicy") if function.role else None
    cfn = function.node.default_child
    assert isinstance(cfn, CfnResource)
    assert policy is not None
    policy_resource = policy.node.default_child
    assert isinstance(policy_resource, CfnElement)
    cfn.add_override("DependsOn", [Stack.of(function).get_logical_id(policy_resource)])
