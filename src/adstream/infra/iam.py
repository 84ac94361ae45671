"""Step 3 of the seed: IAM. Least-privilege Kafka data-plane roles, scoped by MSK ARN format.

MSK IAM resources: `cluster/NAME/UUID`, `topic/NAME/UUID/TOPIC`, `group/NAME/UUID/GROUP`.
The UUID (with its `-N` suffix) is the last path part of the cluster ARN, so it is cut out
of the cluster's ARN at deploy time. No role gets `kafka-cluster:*`.
"""

from __future__ import annotations

from aws_cdk import Fn
from aws_cdk import aws_iam as iam
from constructs import Construct

from adstream.infra.checks import acknowledge_wildcard_resource
from adstream.infra.profiles import Profile

PRODUCER_CLUSTER_ACTIONS = ("kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently")
# DescribeTopicDynamicConfiguration: each service checks its topics' min.insync.replicas at
# start (ADSTREAM_REQUIRE_MIN_INSYNC_REPLICAS, adstream.deployment).
PRODUCER_TOPIC_ACTIONS = (
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
    "kafka-cluster:WriteData",
)
# The aggregator also writes what it cannot parse to `<topic>.dlq` (idempotent producer).
AGGREGATOR_CLUSTER_ACTIONS = ("kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently")
AGGREGATOR_TOPIC_ACTIONS = (
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
    "kafka-cluster:ReadData",
)
AGGREGATOR_DEAD_LETTER_ACTIONS = (
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
    "kafka-cluster:WriteData",
)
AGGREGATOR_GROUP_ACTIONS = ("kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup")
ADMIN_CLUSTER_ACTIONS = (
    "kafka-cluster:Connect",
    "kafka-cluster:DescribeCluster",
    "kafka-cluster:AlterCluster",
    "kafka-cluster:DescribeClusterDynamicConfiguration",
    "kafka-cluster:AlterClusterDynamicConfiguration",
)
ADMIN_TOPIC_ACTIONS = (
    "kafka-cluster:CreateTopic",
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:AlterTopic",
    "kafka-cluster:DeleteTopic",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
    "kafka-cluster:AlterTopicDynamicConfiguration",
)
# The deploy-time `kafka apply`: ACLs are cluster operations on MSK IAM (CreateAcls needs
# AlterCluster, DescribeAcls DescribeCluster); topics only those the desired state names;
# no Delete*, because the deploy never runs with --allow-delete.
APPLY_CLUSTER_ACTIONS = (
    "kafka-cluster:Connect",
    "kafka-cluster:DescribeCluster",
    "kafka-cluster:AlterCluster",
)
# Client quotas, only when the desired state has a `quotas` section: MSK authorizes
# DescribeClientQuotas / AlterClientQuotas as Kafka's DESCRIBE_CONFIGS / ALTER_CONFIGS on the
# cluster, i.e. these two actions.
APPLY_QUOTA_ACTIONS = (
    "kafka-cluster:DescribeClusterDynamicConfiguration",
    "kafka-cluster:AlterClusterDynamicConfiguration",
)
APPLY_TOPIC_ACTIONS = (
    "kafka-cluster:CreateTopic",
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:AlterTopic",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
    "kafka-cluster:AlterTopicDynamicConfiguration",
)
ADMIN_GROUP_ACTIONS = (
    "kafka-cluster:DescribeGroup",
    "kafka-cluster:AlterGroup",
    "kafka-cluster:DeleteGroup",
)


def kafka_arn(cluster_arn: str, cluster_name: str, kind: str, name: str) -> str:
    """`arn:PARTITION:kafka:REGION:ACCOUNT:<kind>/CLUSTER_NAME/CLUSTER_UUID/<name>`."""
    return Fn.sub(
        "arn:${AWS::Partition}:kafka:${AWS::Region}:${AWS::AccountId}:"
        f"{kind}/{cluster_name}/${{ClusterUuid}}/{name}",
        {"ClusterUuid": Fn.select(2, Fn.split("/", cluster_arn))},
    )


def kafka_name_pattern(cluster_name: str, kind: str, name: str | None = None) -> str:
    """The same ARN with any cluster UUID: a policy on it does not wait for the cluster, so
    it exists (and IAM has propagated) long before the cluster's first client runs."""
    suffix = "" if name is None else f"/{name}"
    return Fn.sub(
        "arn:${AWS::Partition}:kafka:${AWS::Region}:${AWS::AccountId}:"
        f"{kind}/{cluster_name}/*{suffix}"
    )


class KafkaRoles(Construct):
    """Producer and aggregator task roles, the deploy-time apply's role (when `apply_topics`
    is given; with `apply_quotas` it may also read and change client quotas) and an operator
    admin role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        cluster_arn: str,
        apply_topics: list[str] | None = None,
        apply_quotas: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        name, topic = profile.cluster.name, profile.topic
        topic_arn = kafka_arn(cluster_arn, name, "topic", topic.name)
        group_arn = kafka_arn(cluster_arn, name, "group", topic.consumer_group)
        tasks = iam.ServicePrincipal("ecs-tasks.amazonaws.com")

        self.producer = iam.Role(
            self, "Producer", assumed_by=tasks, description="ingest API: writes ad events"
        )
        self._allow(self.producer, PRODUCER_CLUSTER_ACTIONS, cluster_arn)
        self._allow(self.producer, PRODUCER_TOPIC_ACTIONS, topic_arn)

        self.aggregator = iam.Role(
            self, "Aggregator", assumed_by=tasks, description="aggregator: reads ad events"
        )
        self._allow(self.aggregator, AGGREGATOR_CLUSTER_ACTIONS, cluster_arn)
        self._allow(self.aggregator, AGGREGATOR_TOPIC_ACTIONS, topic_arn)
        dead_letters = kafka_arn(cluster_arn, name, "topic", f"{topic.name}.dlq")
        self._allow(self.aggregator, AGGREGATOR_DEAD_LETTER_ACTIONS, dead_letters)
        self._allow(self.aggregator, AGGREGATOR_GROUP_ACTIONS, group_arn)

        self.apply: iam.Role | None = None
        if apply_topics is not None:
            self.apply = iam.Role(
                self,
                "KafkaApply",
                assumed_by=tasks,
                description="deploy-time kafka apply: topics and ACLs of deploy/kafka.yaml",
            )
            # Name patterns, not the cluster's ARN: the apply runs right after the cluster
            # exists, and a policy created only then could still be propagating.
            cluster_actions = APPLY_CLUSTER_ACTIONS + (APPLY_QUOTA_ACTIONS if apply_quotas else ())
            patterns: list[tuple[tuple[str, ...], str]] = [
                (cluster_actions, kafka_name_pattern(name, "cluster"))
            ]
            patterns += [
                (APPLY_TOPIC_ACTIONS, kafka_name_pattern(name, "topic", topic))
                for topic in apply_topics
            ]
            for actions, pattern in patterns:
                self._allow(self.apply, actions, pattern)
                acknowledge_wildcard_resource(
                    self.apply,
                    pattern,
                    "only the cluster UUID is a wildcard (one cluster has this name), so the "
                    "policy does not wait for the cluster and has propagated when the apply runs",
                )

        self.admin = iam.Role(
            self,
            "Admin",
            assumed_by=iam.AccountRootPrincipal().with_conditions(
                {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
            ),
            description="operators: create topics, change configs, reset groups (MFA only)",
        )
        self._allow(self.admin, ADMIN_CLUSTER_ACTIONS, cluster_arn)
        for kind, admin_actions in (("topic", ADMIN_TOPIC_ACTIONS), ("group", ADMIN_GROUP_ACTIONS)):
            every = kafka_arn(cluster_arn, name, kind, "*")
            self._allow(self.admin, admin_actions, every)
            acknowledge_wildcard_resource(
                self.admin,
                every,
                f"operators manage every {kind} of this one cluster; only the {kind} name is "
                "a wildcard, the cluster name and UUID are fixed",
            )

    @staticmethod
    def _allow(role: iam.Role, actions: tuple[str, ...], resource: str) -> None:
        role.add_to_policy(iam.PolicyStatement(actions=list(actions), resources=[resource]))
