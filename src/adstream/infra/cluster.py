"""Step 4 of the seed: the MSK cluster, provisioned or serverless by profile.

Provisioned: brokers spread evenly over the AZs, EBS storage that grows by itself (MSK never
shrinks it), encryption at rest under a customer-managed key, TLS in transit and between
brokers, broker logs in CloudWatch, Prometheus exporters, and a configuration that refuses
topic auto-creation and unclean leader election so acknowledged writes are not lost.
Serverless: IAM only; MSK owns sizing, storage and broker configuration.

Updates: a changed server property becomes a new configuration revision, and the cluster
follows the configuration's latest revision. A Kafka version bump replaces the configuration
(its version list is create-only), so its name carries the version and the replacement never
collides with the old one; the cluster itself upgrades in place. The cluster's name is fixed
on purpose: a change CloudFormation can only make by replacing the cluster (subnets, security
groups, the at-rest key, in-cluster encryption) then fails on the name instead of silently
creating an empty cluster; moving to a new cluster is a new `cluster.name` and a migration
(README: Deploying to AWS).
"""

from __future__ import annotations

import re

from aws_cdk import CfnResource, RemovalPolicy
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_msk as msk
from constructs import Construct

from adstream.infra.checks import acknowledge
from adstream.infra.profiles import Profile
from adstream.infra.retention import retention_days


def server_properties(profile: Profile) -> dict[str, str]:
    """Broker configuration of a provisioned cluster (MSK `server.properties`)."""
    return {
        "auto.create.topics.enable": "false",
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
        "log.retention.hours": str(profile.topic.retention_hours),
        "allow.everyone.if.no.acl.found": "false",
    }


def configuration_name(profile: Profile) -> str:
    """`<cluster>-<kafka version>`: a version bump replaces the configuration under a new name."""
    version = re.sub(r"[^0-9A-Za-z]+", "-", profile.cluster.kafka_version).strip("-")
    return f"{profile.cluster.name}-{version}"


def render_properties(properties: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in properties.items())


class KafkaCluster(Construct):
    """The MSK cluster; `arn` and `name` are what IAM policies and clients reference."""

    arn: str
    name: str
    resource: CfnResource

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        private_ca_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = profile.cluster.name
        subnet_ids = vpc.select_subnets(subnet_type=subnets.subnet_type, one_per_az=True).subnet_ids
        if profile.serverless:
            self._serverless(subnet_ids, security_group)
        else:
            self._provisioned(profile, subnet_ids, security_group, private_ca_arn)

    def _serverless(self, subnet_ids: list[str], security_group: ec2.ISecurityGroup) -> None:
        cluster = msk.CfnServerlessCluster(
            self,
            "Serverless",
            cluster_name=self.name,
            client_authentication=msk.CfnServerlessCluster.ClientAuthenticationProperty(
                sasl=msk.CfnServerlessCluster.SaslProperty(
                    iam=msk.CfnServerlessCluster.IamProperty(enabled=True)
                )
            ),
            vpc_configs=[
                msk.CfnServerlessCluster.VpcConfigProperty(
                    subnet_ids=subnet_ids, security_groups=[security_group.security_group_id]
                )
            ],
        )
        self.arn, self.resource = cluster.attr_arn, cluster

    def _provisioned(
        self,
        profile: Profile,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
        private_ca_arn: str | None,
    ) -> None:
        c = profile.cluster
        self.key = kms.Key(
            self,
            "DataKey",
            description=f"MSK {c.name} encryption at rest",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        configuration = msk.CfnConfiguration(
            self,
            "Configuration",
            name=configuration_name(profile),
            description="adstream broker settings: no auto-created topics, RF 3, min ISR 2",
            kafka_versions_list=[c.kafka_version],
            server_properties=render_properties(server_properties(profile)),
        )
        broker_logs = logs.LogGroup(
            self,
            "BrokerLogs",
            retention=retention_days(c.broker_log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        cluster = msk.CfnCluster(
            self,
            "Provisioned",
            cluster_name=c.name,
            kafka_version=c.kafka_version,
            number_of_broker_nodes=c.broker_count,
            enhanced_monitoring=c.enhanced_monitoring,
            broker_node_group_info=msk.CfnCluster.BrokerNodeGroupInfoProperty(
                instance_type=c.instance_type,
                client_subnets=subnet_ids,
                security_groups=[security_group.security_group_id],
                storage_info=msk.CfnCluster.StorageInfoProperty(
                    ebs_storage_info=msk.CfnCluster.EBSStorageInfoProperty(
                        volume_size=c.ebs_volume_gb
                    )
                ),
            ),
            encryption_info=msk.CfnCluster.EncryptionInfoProperty(
                encryption_at_rest=msk.CfnCluster.EncryptionAtRestProperty(
                    data_volume_kms_key_id=self.key.key_arn
                ),
                encryption_in_transit=msk.CfnCluster.EncryptionInTransitProperty(
                    client_broker=c.client_broker.value, in_cluster=True
                ),
            ),
            client_authentication=self._client_auth(profile, private_ca_arn),
            configuration_info=msk.CfnCluster.ConfigurationInfoProperty(
                arn=configuration.attr_arn,
                revision=configuration.attr_latest_revision_revision,
            ),
            logging_info=msk.CfnCluster.LoggingInfoProperty(
                broker_logs=msk.CfnCluster.BrokerLogsProperty(
                    cloud_watch_logs=msk.CfnCluster.CloudWatchLogsProperty(
                        enabled=True, log_group=broker_logs.log_group_name
                    )
                )
            ),
            open_monitoring=msk.CfnCluster.OpenMonitoringProperty(
                prometheus=msk.CfnCluster.PrometheusProperty(
                    jmx_exporter=msk.CfnCluster.JmxExporterProperty(enabled_in_broker=True),
                    node_exporter=msk.CfnCluster.NodeExporterProperty(enabled_in_broker=True),
                )
            ),
        )
        self.arn, self.resource = cluster.ref, cluster
        if profile.plaintext:
            acknowledge(
                cluster,
                "AwsSolutions-MSK2",
                "plaintext next to TLS is a dev-profile opt-in (profile validation refuses it "
                "for prod); the broker security group still admits only the client group",
            )
        self._storage_autoscaling(profile)

    @staticmethod
    def _client_auth(
        profile: Profile, private_ca_arn: str | None
    ) -> msk.CfnCluster.ClientAuthenticationProperty:
        auth = profile.cluster.auth
        tls = None
        if auth.mtls:
            assert private_ca_arn is not None, "mTLS needs the private CA"
            tls = msk.CfnCluster.TlsProperty(
                enabled=True, certificate_authority_arn_list=[private_ca_arn]
            )
        return msk.CfnCluster.ClientAuthenticationProperty(
            sasl=msk.CfnCluster.SaslProperty(
                iam=msk.CfnCluster.IamProperty(enabled=auth.iam),
                scram=msk.CfnCluster.ScramProperty(enabled=auth.scram),
            ),
            tls=tls,
            unauthenticated=msk.CfnCluster.UnauthenticatedProperty(enabled=profile.plaintext),
        )

    def _storage_autoscaling(self, profile: Profile) -> None:
        """Grow broker EBS volumes at the target utilisation (scale-in is impossible on MSK)."""
        c = profile.cluster
        target = appscaling.CfnScalableTarget(
            self,
            "StorageTarget",
            service_namespace="kafka",
            scalable_dimension="kafka:broker-storage:VolumeSize",
            resource_id=self.arn,
            min_capacity=c.ebs_volume_gb,
            max_capacity=c.ebs_max_volume_gb,
        )
        appscaling.CfnScalingPolicy(
            self,
            "StoragePolicy",
            policy_name=f"{c.name}-storage",
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.ref,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=c.storage_target_utilization,
                disable_scale_in=True,
                predefined_metric_specification=appscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="KafkaBrokerStorageUtilization"
                ),
            ),
        )
