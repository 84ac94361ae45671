"""The deployable: one stack per profile, built in the seed's order.

VPC → security groups → (client CA) → MSK cluster (+ SCRAM users) → IAM roles → bootstrap
brokers → (Glue schema registry) → deploy-time `kafka apply` → count database → client
services → (MSK Connect warehouse connector) → alarms. IAM comes after the cluster here only
because its policies name the cluster's ARN, which exists once the cluster construct does.
The optional parts follow the profile's `schema` and `warehouse` sections (off by default).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from aws_cdk import CfnElement, CfnOutput, Environment, Fn, Stack
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from adstream.infra.bootstrap import BootstrapBrokers
from adstream.infra.clients import ClientServices
from adstream.infra.cluster import KafkaCluster
from adstream.infra.database import CountDatabase
from adstream.infra.iam import KafkaRoles
from adstream.infra.kafka_apply import (
    KafkaApply,
    desired_state_files,
    desired_topics,
    manages_quotas,
    topic_partitions,
)
from adstream.infra.limits_cache import LimitsCache
from adstream.infra.monitoring import ClusterAlarms, OpsDashboard
from adstream.infra.network import Network
from adstream.infra.profiles import ClientAuth, PixelMode, Profile, ProfileError
from adstream.infra.public_pixels import PublicPixels
from adstream.infra.schema_registry import GlueSchemaRegistry
from adstream.infra.scram import ScramUsers
from adstream.infra.security_groups import SecurityGroups
from adstream.infra.tls import ClientCertificateAuthority
from adstream.infra.warehouse import CONTROL_TOPIC, SOURCE_TOPIC, PluginZip, RawEventsWarehouse


class AggregatorCountError(ProfileError):
    """More aggregator tasks than the topic has partitions."""


def check_aggregator_count(profile: Profile, partitions: int | None) -> None:
    """Each aggregator task needs a partition of its own: the ones beyond the topic's
    partition count would sit idle in the group and still cost a task each."""
    desired = profile.clients.aggregator.desired_count
    if partitions is not None and desired > partitions:
        raise AggregatorCountError(
            f"clients.aggregator.desired_count: {desired} tasks for {partitions} partitions "
            f"of {profile.topic.name} (deploy/kafka*.yaml); at most {partitions} consume"
        )


class PluginZipError(ProfileError):
    """The warehouse's MSK Connect plugin ZIP is missing."""


def plugin_zip_file(profile: Profile) -> Path:
    """The profile's plugin ZIP, which must exist: `cdk deploy` uploads it as an asset."""
    path = profile.plugin_zip_path()
    assert path is not None, "profile validation requires warehouse.plugin_zip"
    if not path.is_file():
        raise PluginZipError(
            f"warehouse.plugin_zip: no file {path}; build it with `adstream connect "
            f"plugin-zip {path}` (from Maven Central, ~140 MB)"
        )
    return path


def check_warehouse_topics(topics: Iterable[str]) -> None:
    """The connector's topics must be in deploy/kafka*.yaml: the apply creates them."""
    missing = sorted({SOURCE_TOPIC, CONTROL_TOPIC} - set(topics))
    if missing:
        raise ProfileError(
            f"warehouse.enabled: topics {missing} are not in deploy/kafka*.yaml, and the "
            "connector neither creates them nor may"
        )


class AdstreamStack(Stack):
    """Everything adstream needs in one account and region, sized by `profile`."""

    def __init__(self, scope: Construct, *, profile: Profile) -> None:
        self._az_count = profile.az_count
        super().__init__(
            scope,
            profile.stack_name,
            env=Environment(account=profile.account, region=profile.region),
            description=f"adstream on Amazon MSK ({profile.name} profile)",
        )
        network = Network(self, "Network", profile=profile)
        groups = SecurityGroups(self, "SecurityGroups", profile=profile, vpc=network.vpc)
        ca = (
            ClientCertificateAuthority(self, "ClientCa", profile=profile)
            if profile.cluster.auth.mtls
            else None
        )
        cluster = KafkaCluster(
            self,
            "Kafka",
            profile=profile,
            vpc=network.vpc,
            subnets=network.private_subnets,
            security_group=groups.brokers,
            private_ca_arn=ca.arn if ca else None,
        )
        if ca is not None and ca.ready is not None:
            cluster.resource.node.add_dependency(ca.ready)
        scram = (
            ScramUsers(self, "Scram", profile=profile, cluster_arn=cluster.arn)
            if profile.cluster.auth.scram
            else None
        )
        apply_files = desired_state_files(profile) if profile.kafka_apply.enabled else None
        if apply_files is not None:
            check_aggregator_count(profile, topic_partitions(apply_files, profile.topic.name))
        roles = KafkaRoles(
            self,
            "Iam",
            profile=profile,
            cluster_arn=cluster.arn,
            apply_topics=desired_topics(apply_files) if apply_files else None,
            # MSK Serverless takes no client quotas: the apply skips them there.
            apply_quotas=bool(apply_files)
            and not profile.serverless
            and manages_quotas(apply_files or []),
        )
        iam_brokers = apply_files is not None or profile.warehouse.enabled
        auths = (profile.clients.auth, ClientAuth.IAM) if iam_brokers else (profile.clients.auth,)
        brokers = BootstrapBrokers(
            self,
            "Bootstrap",
            cluster_arn=cluster.arn,
            cluster_name=cluster.name,
            auths=tuple(dict.fromkeys(auths)),
        )
        schema = (
            GlueSchemaRegistry(
                self,
                "Schemas",
                registry_name=profile.schema_.registry_name,
                topic=profile.topic.name,
                producer_role=roles.producer,
                aggregator_role=roles.aggregator,
            )
            if profile.schema_.created
            else None
        )
        schema_env = (
            {"ADSTREAM_SCHEMA_FORMAT": profile.schema_.format.value}
            | schema.environment(profile.region)
            if schema is not None
            else {}
        )
        database = (
            CountDatabase(
                self,
                "Database",
                profile=profile,
                vpc=network.vpc,
                subnets=network.private_subnets,
                client_sg=groups.clients,
            )
            if profile.database.created
            else None
        )
        limits_cache = (
            LimitsCache(
                self,
                "ApiLimits",
                profile=profile,
                vpc=network.vpc,
                subnets=network.private_subnets,
            )
            if profile.clients.api_limits.enabled
            else None
        )
        services = ClientServices(
            self,
            "Clients",
            profile=profile,
            vpc=network.vpc,
            subnets=network.private_subnets,
            client_sg=groups.clients,
            monitoring_sg=groups.monitoring,
            producer_role=roles.producer,
            aggregator_role=roles.aggregator,
            brokers=brokers.brokers[profile.clients.auth],
            scram_secrets=scram.secrets if scram else {},
            database=database.connection if database else None,
            limits=limits_cache.connection if limits_cache else None,
            extra_environment=schema_env,
        )
        if schema is not None:
            # The producer registers (or looks up) its schema version at start.
            for element in schema.ready():
                services.start_after(element)
        kafka_apply: KafkaApply | None = None
        if apply_files is not None:
            assert roles.apply is not None
            kafka_apply = KafkaApply(
                self,
                "KafkaApply",
                profile=profile,
                files=apply_files,
                cluster=services.cluster,
                image=services.image,
                role=roles.apply,
                brokers=brokers.brokers[ClientAuth.IAM],
                subnets=network.private_subnets,
                security_group=groups.clients,
            )
            kafka_apply.resource.node.add_dependency(roles.apply)  # with its policy
            if scram is not None:
                kafka_apply.resource.node.add_dependency(scram.association)
            run = kafka_apply.resource.node.default_child
            assert isinstance(run, CfnElement)
            services.start_after(run)
        warehouse = None
        if profile.warehouse.enabled:
            assert apply_files is not None, "profile validation requires kafka_apply"
            assert kafka_apply is not None, "profile validation requires kafka_apply"
            check_warehouse_topics(desired_topics(apply_files))
            plugin = s3_assets.Asset(self, "ConnectPlugin", path=str(plugin_zip_file(profile)))
            warehouse = RawEventsWarehouse(
                self,
                "Warehouse",
                cluster_arn=cluster.arn,
                cluster_name=cluster.name,
                bootstrap_brokers_iam=brokers.brokers[ClientAuth.IAM],
                subnets=network.vpc.select_subnets(
                    subnet_type=network.private_subnets.subnet_type
                ).subnets,
                security_group=groups.clients,
                plugin=PluginZip(plugin.bucket, plugin.s3_object_key),
                commit_interval_ms=profile.warehouse.commit_interval_ms,
            )
            # Its topics exist (and its ACL-free IAM grants apply) once the apply has run.
            warehouse.connector.node.add_dependency(cluster.resource)
            warehouse.connector.node.add_dependency(kafka_apply.resource)
        pixels = None
        if profile.public_pixels.mode is not PixelMode.NONE:
            pixels = PublicPixels(
                self,
                "PublicPixels",
                profile=profile,
                vpc=network.vpc,
                load_balancer=services.load_balancer,
                internal_https=services.scheme == "https",
                api=services.api,
            )
            for rule in pixels.public_alb.rules if pixels.public_alb else ():
                services.start_after(rule)  # its target group must be on a listener first
        alarms = ClusterAlarms(self, "Alarms", profile=profile)
        dashboard = OpsDashboard(
            self,
            "Ops",
            profile=profile,
            alarms=alarms.alarms,
            services={"api": services.api, "aggregator": services.aggregator},
        )

        CfnOutput(self, "ClusterArn", value=cluster.arn)
        CfnOutput(self, "BootstrapBrokers", value=brokers.brokers[profile.clients.auth])
        CfnOutput(
            self,
            "IngestApiUrl",
            value=f"{services.scheme}://{services.load_balancer.load_balancer_dns_name}",
        )
        CfnOutput(self, "AlarmTopicArn", value=alarms.topic.topic_arn)
        CfnOutput(self, "DashboardName", value=dashboard.dashboard.dashboard_name)
        CfnOutput(self, "AdminRoleArn", value=roles.admin.role_arn)
        if ca is not None:
            CfnOutput(self, "ClientCaArn", value=ca.arn)
        if database is not None:
            CfnOutput(self, "DatabaseEndpoint", value=database.endpoint.hostname)
            CfnOutput(self, "DatabaseSecretArn", value=database.secret.secret_arn)
        if limits_cache is not None:
            CfnOutput(self, "ApiLimitsEndpoint", value=limits_cache.cache.attr_endpoint_address)
        if schema is not None:
            CfnOutput(self, "SchemaRegistryName", value=schema.registry_name)
        if pixels is not None:
            CfnOutput(self, "PublicPixelsUrl", value=pixels.url)
        if warehouse is not None:
            CfnOutput(self, "WarehouseBucket", value=warehouse.bucket.bucket_name)
            CfnOutput(self, "ConnectorArn", value=warehouse.connector.attr_connector_arn)

    @property
    def availability_zones(self) -> list[str]:
        """The region's first `az_count` AZs, resolved by CloudFormation (`Fn::GetAZs`).

        CDK offers only two AZs to a stack without a concrete account; this gives the VPC
        two or three without an account lookup, and without hard-coded zone names.
        """
        return [Fn.select(index, Fn.get_azs()) for index in range(self._az_count)]
