"""Operational alarms for a provisioned cluster, published to one encrypted SNS topic.

Per broker: data-disk use (MSK cannot write once a disk is full, and storage autoscaling only
acts every six hours), CPU user+system (MSK's guidance: keep below 60% to survive a broker
loss), and under-replicated partitions (acks=all producers stall when ISR shrinks below
`min.insync.replicas`). Per cluster: offline partitions (data unavailable).
MSK Serverless publishes no broker metrics, so it gets the topic but no broker alarms.
`OpsDashboard` graphs the same metrics, the consumer lag and the ECS services, and shows
the alarms' state.
"""

from __future__ import annotations

from aws_cdk import Annotations, Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from adstream.infra.profiles import Profile

NAMESPACE = "AWS/Kafka"
NO_SUBSCRIBER_WARNING = (
    "alarms.email is not set: the alarms publish to the AlarmTopicArn topic, which nobody "
    "is subscribed to; set alarms.email or subscribe to the topic after the deploy"
)
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
                # Only this account's alarms (confused-deputy protection).
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
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
        elif not profile.serverless:
            Annotations.of(self).add_warning_v2(
                "adstream:alarms-unsubscribed",
                NO_SUBSCRIBER_WARNING,
            )
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


_ECS_PERIOD = Duration.minutes(1)


class OpsDashboard(Construct):
    """One CloudWatch dashboard: the alarms' state, MSK health and the two ECS services.

    Provisioned clusters get the DEFAULT-level (free) per-broker metrics: CPU user+system,
    data-disk use, bytes in/out, under-replicated partitions, plus the cluster's offline
    partitions and active controllers. MSK Serverless publishes no broker metrics, only
    per-topic traffic ("Cluster Name", "Topic"); both kinds publish consumer lag per
    ("Cluster Name", "Consumer Group", "Topic") for the group the aggregator is given.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        alarms: list[cloudwatch.Alarm],
        services: dict[str, ecs.FargateService],
    ) -> None:
        super().__init__(scope, construct_id)
        self._profile = profile
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=profile.stack_name,
            default_interval=Duration.hours(3),
        )
        cluster = profile.cluster.name
        kind = "MSK Serverless" if profile.serverless else "MSK provisioned"
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"# adstream · {profile.name}\n"
                    f"{kind} cluster `{cluster}`, topic `{profile.topic.name}`, "
                    f"aggregator group `{profile.topic.consumer_group}`"
                ),
                width=24,
                height=2,
            )
        )
        if alarms:
            self.dashboard.add_widgets(
                cloudwatch.AlarmStatusWidget(
                    title="Alarms", alarms=list(alarms), width=24, height=3
                )
            )
        if not profile.serverless:
            self._brokers()
        else:
            self._serverless_traffic()
        self.dashboard.add_widgets(self._lag())
        self._ecs(services)

    def _broker_dims(self, broker: int) -> dict[str, str]:
        return {"Cluster Name": self._profile.cluster.name, "Broker ID": str(broker)}

    def _per_broker(self, name: str, statistic: str) -> list[cloudwatch.IMetric]:
        return [
            _metric(name, self._broker_dims(b), statistic).with_(label=f"broker {b}")
            for b in range(1, self._profile.cluster.broker_count + 1)
        ]

    def _brokers(self) -> None:
        limits = self._profile.alarms
        cpu: list[cloudwatch.IMetric] = [
            cloudwatch.MathExpression(
                expression=f"user{b} + system{b}",
                using_metrics={
                    f"user{b}": _metric("CpuUser", self._broker_dims(b), "Average"),
                    f"system{b}": _metric("CpuSystem", self._broker_dims(b), "Average"),
                },
                period=_PERIOD,
                label=f"broker {b}",
            )
            for b in range(1, self._profile.cluster.broker_count + 1)
        ]
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Broker CPU user + system (%)",
                left=cpu,
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100, label="%", show_units=False),
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=limits.cpu_percent, label="alarm")
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Broker data disk used (%)",
                left=self._per_broker("KafkaDataLogsDiskUsed", "Maximum"),
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100, label="%", show_units=False),
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=limits.disk_used_percent, label="alarm")
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Bytes in per broker (bytes/s)",
                left=self._per_broker("BytesInPerSec", "Average"),
                left_y_axis=cloudwatch.YAxisProps(min=0, label="bytes/s", show_units=False),
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Bytes out per broker (bytes/s)",
                left=self._per_broker("BytesOutPerSec", "Average"),
                left_y_axis=cloudwatch.YAxisProps(min=0, label="bytes/s", show_units=False),
                width=12,
            ),
        )
        cluster = {"Cluster Name": self._profile.cluster.name}
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Under-replicated partitions per broker",
                left=self._per_broker("UnderReplicatedPartitions", "Maximum"),
                left_y_axis=cloudwatch.YAxisProps(min=0, label="partitions", show_units=False),
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Cluster: offline partitions and active controllers",
                left=[
                    _metric("OfflinePartitionsCount", cluster).with_(label="offline partitions"),
                    # Every broker reports 0 or 1 each minute: the per-minute sum is 1.
                    _metric("ActiveControllerCount", cluster, "Sum").with_(
                        period=Duration.minutes(1), label="active controllers (should be 1)"
                    ),
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, label="count", show_units=False),
                width=12,
            ),
        )

    def _serverless_traffic(self) -> None:
        dims = {"Cluster Name": self._profile.cluster.name, "Topic": self._profile.topic.name}
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=f"Topic {self._profile.topic.name}: bytes in / out (bytes/s)",
                left=[
                    _metric("BytesInPerSec", dims, "Average").with_(label="bytes in"),
                    _metric("BytesOutPerSec", dims, "Average").with_(label="bytes out"),
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, label="bytes/s", show_units=False),
                width=24,
            )
        )

    def _lag(self) -> cloudwatch.GraphWidget:
        topic = self._profile.topic
        dims = {
            "Cluster Name": self._profile.cluster.name,
            "Consumer Group": topic.consumer_group,  # what the aggregator service is given
            "Topic": topic.name,
        }
        return cloudwatch.GraphWidget(
            title=f"Consumer lag of {topic.consumer_group} on {topic.name}",
            left=[_metric("EstimatedMaxTimeLag", dims).with_(label="estimated max time lag (s)")],
            right=[_metric("MaxOffsetLag", dims).with_(label="max offset lag (messages)")],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="seconds", show_units=False),
            right_y_axis=cloudwatch.YAxisProps(min=0, label="messages", show_units=False),
            width=24,
        )

    def _ecs(self, services: dict[str, ecs.FargateService]) -> None:
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="ECS services: CPU utilization (%)",
                left=[
                    s.metric_cpu_utilization(period=_ECS_PERIOD, label=name)
                    for name, s in services.items()
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100, label="%", show_units=False),
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="ECS services: memory utilization (%)",
                left=[
                    s.metric_memory_utilization(period=_ECS_PERIOD, label=name)
                    for name, s in services.items()
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100, label="%", show_units=False),
                width=12,
            ),
        )
