"""Operational alarms for a provisioned cluster, published to one encrypted SNS topic.

Per broker: data-disk use (MSK cannot write once a disk is full, and storage autoscaling only
acts every six hours), CPU user+system (MSK's guidance: keep below 60% to survive a broker
loss), and under-replicated partitions (acks=all producers stall when ISR shrinks below
`min.insync.replicas`). Per cluster: offline partitions (data unavailable).
MSK Serverless publishes no broker metrics, so it gets the topic but no broker alarms.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from adstream.infra.profiles import Profile

NAMESPACE = "AWS/Kafka"
_PERIOD = Duration.minutes(5)


def _metric(name: str, dimensions: dict[str, str], statistic: str = "Maximum") -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=_PERIOD,
    )


class ClusterAlarms(Construct):
    """The SNS alarm topic and the broker/cluster alarms that publish to it."""

    def __init__(self, scope: Construct, construct_id: str, *, profile: Profile) -> None:
        super().__init__(scope, construct_id)
        key = kms.Key(
            self,
            "TopicKey",
            description="adstream alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"{profile.stack_name} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if profile.alarms.email:
            self.topic.add_subscription(subscriptions.EmailSubscription(profile.alarms.email))
        self.alarms: list[cloudwatch.Alarm] = []
        if not profile.serverless:
            self._broker_alarms(profile)

    def _broker_alarms(self, profile: Profile) -> None:
        cluster, limits = profile.cluster.name, profile.alarms
        for broker in range(1, profile.cluster.broker_count + 1):
            dims = {"Cluster Name": cluster, "Broker ID": str(broker)}
            self._alarm(
                f"DiskUsed{broker}",
                _metric("KafkaDataLogsDiskUsed", dims),
                limits.disk_used_percent,
                f"broker {broker}: data disk above {limits.disk_used_percent}%",
            )
            cpu = cloudwatch.MathExpression(
                expression="user + system",
                using_metrics={
                    "user": _metric("CpuUser", dims, "Average"),
                    "system": _metric("CpuSystem", dims, "Average"),
                },
                period=_PERIOD,
                label=f"CPU user+system broker {broker}",
            )
            self._alarm(
                f"Cpu{broker}",
                cpu,
                limits.cpu_percent,
                f"broker {broker}: CPU user+system above {limits.cpu_percent}%",
            )
            self._alarm(
                f"UnderReplicated{broker}",
                _metric("UnderReplicatedPartitions", dims),
                0,
                f"broker {broker}: under-replicated partitions",
                evaluation_periods=3,
            )
        self._alarm(
            "OfflinePartitions",
            _metric("OfflinePartitionsCount", {"Cluster Name": cluster}),
            0,
            "cluster: offline partitions (no leader; reads and writes fail)",
            evaluation_periods=1,
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        evaluation_periods: int = 2,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
