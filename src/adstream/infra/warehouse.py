"""Raw events into the warehouse on AWS: MSK Connect running the Apache Iceberg sink.

The same connector as ``adstream connect`` locally, with the AWS catalog and storage: a
Glue database as the Iceberg catalog and an S3 bucket (encrypted, TLS only, versioned) as
the warehouse. MSK Connect authenticates to MSK with IAM only (or not at all), so the
service execution role carries the data-plane grants that ``deploy/kafka.yaml`` gives
``adstream-connect`` as ACLs: read ``ad-events``, read/write the control topic, its groups
and transactional ids, plus MSK Connect's own internal topics and groups.

The custom plugin is a ZIP in S3 built from the jars ``adstream connect`` assembles plus
``iceberg-aws-bundle`` (Glue, S3FileIO) and ``aws-msk-iam-auth`` (the sink's own Kafka
clients reach the control topic with IAM too): `adstream connect plugin-zip` writes it.

``AdstreamStack`` adds it when the profile's ``warehouse.enabled`` is set, with the plugin
ZIP as a CDK asset, after the cluster and the deploy-time apply (which creates its topics).
Names (topics, groups, table) are stated again here because ``adstream.infra`` imports
nothing else of adstream.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kafkaconnect as kafkaconnect
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from adstream.infra.checks import acknowledge, acknowledge_wildcard_resource
from adstream.infra.iam import kafka_arn

CONNECTOR_NAME = "adstream-iceberg"
SOURCE_TOPIC = "ad-events"
CONTROL_TOPIC = "adstream-iceberg-control"
CONNECT_GROUP = f"connect-{CONNECTOR_NAME}"
TRANSACTIONAL_PREFIX = f"{CONNECTOR_NAME}-"
GLUE_DATABASE = "adstream"
TABLE = f"{GLUE_DATABASE}.ad_events_raw"
KAFKA_CONNECT_VERSION = "3.7.x"
MSK_CONNECT_INTERNAL = "__amazon_msk_connect_"
"""MSK Connect's own config/offset/status topics and groups start with this."""

CLUSTER_ACTIONS = (
    "kafka-cluster:Connect",
    "kafka-cluster:DescribeCluster",
    "kafka-cluster:WriteDataIdempotently",
)
SOURCE_TOPIC_ACTIONS = ("kafka-cluster:DescribeTopic", "kafka-cluster:ReadData")
CONTROL_TOPIC_ACTIONS = (
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:ReadData",
    "kafka-cluster:WriteData",
)
INTERNAL_TOPIC_ACTIONS = (
    "kafka-cluster:CreateTopic",
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:ReadData",
    "kafka-cluster:WriteData",
)
GROUP_ACTIONS = ("kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup")
TRANSACTIONAL_ID_ACTIONS = (
    "kafka-cluster:DescribeTransactionalId",
    "kafka-cluster:AlterTransactionalId",
)
WAREHOUSE_OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
)
GLUE_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:UpdateTable",
)

_IAM_CLIENT = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "AWS_MSK_IAM",
    "sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
    "sasl.client.callback.handler.class": ("software.amazon.msk.auth.iam.IAMClientCallbackHandler"),
}


@dataclass(frozen=True)
class PluginZip:
    """The custom plugin's ZIP: Iceberg's sink jars + iceberg-aws-bundle + aws-msk-iam-auth."""

    bucket: s3.IBucket
    key: str


def worker_properties() -> str:
    """The worker configuration: schemaless JSON values, put() at least every second."""
    return "\n".join(
        [
            "key.converter=org.apache.kafka.connect.storage.StringConverter",
            "value.converter=org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable=false",
            "offset.flush.interval.ms=1000",
        ]
    )


def connector_configuration(
    bootstrap_brokers_iam: str, warehouse_uri: str, region: str, commit_interval_ms: int
) -> dict[str, str]:
    """The Iceberg sink with Glue + S3; the same delivery settings as ``adstream connect``."""
    return {
        "connector.class": "org.apache.iceberg.connect.IcebergSinkConnector",
        # One task: one writer and one coordinator (a zombie coordinator is not fenced,
        # apache/iceberg #18039).
        "tasks.max": "1",
        "topics": SOURCE_TOPIC,
        "iceberg.tables": TABLE,
        "iceberg.tables.auto-create-enabled": "false",
        "iceberg.catalog.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        "iceberg.catalog.warehouse": warehouse_uri,
        "iceberg.catalog.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        "iceberg.catalog.client.region": region,
        "iceberg.control.topic": CONTROL_TOPIC,
        "iceberg.control.group-id-prefix": f"{CONNECT_GROUP}-control-",
        "iceberg.coordinator.transactional.prefix": TRANSACTIONAL_PREFIX,
        "iceberg.control.commit.interval-ms": str(commit_interval_ms),
        "iceberg.kafka.auto.offset.reset": "earliest",  # apache/iceberg #17551
        "iceberg.kafka.bootstrap.servers": bootstrap_brokers_iam,
        **{f"iceberg.kafka.{key}": value for key, value in _IAM_CLIENT.items()},
        "transforms": "kafka",
        "transforms.kafka.type": "org.apache.iceberg.connect.transforms.KafkaMetadataTransform",
        "errors.tolerance": "all",
        "errors.log.enable": "true",
    }


class RawEventsWarehouse(Construct):
    """S3 warehouse bucket, Glue database, MSK Connect plugin, worker config and connector."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_arn: str,
        cluster_name: str,
        bootstrap_brokers_iam: str,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        plugin: PluginZip,
        commit_interval_ms: int = 300_000,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                # Versioning keeps what Iceberg's snapshot expiry deletes: not for ever.
                s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30)),
            ],
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "the warehouse is written only by the connector's role; its reads and writes are "
            "recorded as Iceberg snapshots, and CloudTrail data events can be enabled per account",
        )
        warehouse_uri = self.bucket.s3_url_for_object("warehouse")
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=GLUE_DATABASE,
                description="adstream raw ad events (Apache Iceberg tables)",
                location_uri=warehouse_uri,
            ),
        )
        self.role = self._service_role(cluster_arn, cluster_name)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )

        self.custom_plugin = kafkaconnect.CfnCustomPlugin(
            self,
            "Plugin",
            name=f"{CONNECTOR_NAME}-plugin",
            content_type="ZIP",
            description="Apache Iceberg Kafka Connect sink + AWS bundle + aws-msk-iam-auth",
            location=kafkaconnect.CfnCustomPlugin.CustomPluginLocationProperty(
                s3_location=kafkaconnect.CfnCustomPlugin.S3LocationProperty(
                    bucket_arn=plugin.bucket.bucket_arn, file_key=plugin.key
                )
            ),
        )
        self.worker_configuration = kafkaconnect.CfnWorkerConfiguration(
            self,
            "WorkerConfiguration",
            name=f"{CONNECTOR_NAME}-worker",
            properties_file_content=base64.b64encode(worker_properties().encode()).decode(),
        )
        region = Stack.of(self).region
        self.connector = kafkaconnect.CfnConnector(
            self,
            "Connector",
            connector_name=CONNECTOR_NAME,
            connector_description="ad-events into the Iceberg table adstream.ad_events_raw",
            kafka_connect_version=KAFKA_CONNECT_VERSION,
            capacity=kafkaconnect.CfnConnector.CapacityProperty(
                provisioned_capacity=kafkaconnect.CfnConnector.ProvisionedCapacityProperty(
                    mcu_count=1, worker_count=1
                )
            ),
            connector_configuration=connector_configuration(
                bootstrap_brokers_iam, warehouse_uri, region, commit_interval_ms
            ),
            kafka_cluster=kafkaconnect.CfnConnector.KafkaClusterProperty(
                apache_kafka_cluster=kafkaconnect.CfnConnector.ApacheKafkaClusterProperty(
                    bootstrap_servers=bootstrap_brokers_iam,
                    vpc=kafkaconnect.CfnConnector.VpcProperty(
                        security_groups=[security_group.security_group_id],
                        subnets=[subnet.subnet_id for subnet in subnets],
                    ),
                )
            ),
            kafka_cluster_client_authentication=(
                kafkaconnect.CfnConnector.KafkaClusterClientAuthenticationProperty(
                    authentication_type="IAM"
                )
            ),
            kafka_cluster_encryption_in_transit=(
                kafkaconnect.CfnConnector.KafkaClusterEncryptionInTransitProperty(
                    encryption_type="TLS"
                )
            ),
            plugins=[
                kafkaconnect.CfnConnector.PluginProperty(
                    custom_plugin=kafkaconnect.CfnConnector.CustomPluginProperty(
                        custom_plugin_arn=self.custom_plugin.attr_custom_plugin_arn,
                        revision=self.custom_plugin.attr_revision,
                    )
                )
            ],
            service_execution_role_arn=self.role.role_arn,
            worker_configuration=kafkaconnect.CfnConnector.WorkerConfigurationProperty(
                worker_configuration_arn=self.worker_configuration.attr_worker_configuration_arn,
                revision=self.worker_configuration.attr_revision,
            ),
            log_delivery=kafkaconnect.CfnConnector.LogDeliveryProperty(
                worker_log_delivery=kafkaconnect.CfnConnector.WorkerLogDeliveryProperty(
                    cloud_watch_logs=kafkaconnect.CfnConnector.CloudWatchLogsLogDeliveryProperty(
                        enabled=True, log_group=self.log_group.log_group_name
                    )
                )
            ),
        )
        # The grants must exist before MSK Connect first uses the role (the ARN alone does
        # not order the role's policy before the connector).
        self.connector.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        self.connector.add_dependency(self.database)

    def _service_role(self, cluster_arn: str, cluster_name: str) -> iam.Role:
        """The connector's service execution role: exactly what the sink does, no more."""
        role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal(
                "kafkaconnect.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="MSK Connect: Iceberg sink of ad-events into S3 + Glue",
        )

        def allow(actions: Sequence[str], *resources: str) -> None:
            role.add_to_policy(
                iam.PolicyStatement(actions=list(actions), resources=list(resources))
            )

        def kafka(kind: str, name: str) -> str:
            return kafka_arn(cluster_arn, cluster_name, kind, name)

        allow(CLUSTER_ACTIONS, cluster_arn)
        allow(SOURCE_TOPIC_ACTIONS, kafka("topic", SOURCE_TOPIC))
        allow(CONTROL_TOPIC_ACTIONS, kafka("topic", CONTROL_TOPIC))
        prefixed = {
            "topic": (INTERNAL_TOPIC_ACTIONS, kafka("topic", f"{MSK_CONNECT_INTERNAL}*")),
            "group": (GROUP_ACTIONS, kafka("group", f"{CONNECT_GROUP}*")),
            "internal group": (GROUP_ACTIONS, kafka("group", f"{MSK_CONNECT_INTERNAL}*")),
            "transactional id": (
                TRANSACTIONAL_ID_ACTIONS,
                kafka("transactional-id", f"{TRANSACTIONAL_PREFIX}*"),
            ),
        }
        for what, (actions, arn) in prefixed.items():
            allow(actions, arn)
            acknowledge_wildcard_resource(
                role,
                arn,
                f"the sink's {what}s carry generated suffixes (a UUID, a task number) after a "
                "fixed prefix; cluster name and UUID are fixed",
            )
        allow(("s3:ListBucket", "s3:GetBucketLocation"), self.bucket.bucket_arn)
        objects = self.bucket.arn_for_objects("warehouse/*")
        allow(WAREHOUSE_OBJECT_ACTIONS, objects)
        acknowledge_wildcard_resource(
            role, objects, "Iceberg names its data and metadata files; only under warehouse/"
        )
        stack = Stack.of(self)
        glue_tables = stack.format_arn(
            service="glue", resource="table", resource_name=f"{GLUE_DATABASE}/*"
        )
        allow(
            GLUE_ACTIONS,
            stack.format_arn(service="glue", resource="catalog"),
            stack.format_arn(service="glue", resource="database", resource_name=GLUE_DATABASE),
            glue_tables,
        )
        acknowledge_wildcard_resource(
            role, glue_tables, "the tables of the one adstream Glue database (Iceberg commits)"
        )
        return role
