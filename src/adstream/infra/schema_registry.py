"""AWS Glue Schema Registry for ``ADSTREAM_SCHEMA_REGISTRY=glue``: registry, schema, IAM.

`AdstreamStack` adds it when the profile's ``schema.format`` is avro, with the producer's
and the aggregator's task roles, passes the task environment on (``environment()``) and
starts the services after ``ready()``.

- The registry holds one schema, ``<topic>-value`` (the TopicNameStrategy name the
  serializer looks up), created with AdEvent's current Avro definition and ``BACKWARD``
  compatibility, so Glue refuses a version that breaks existing readers.
- The producer may look up its schema by definition and register a new version (Glue runs
  the compatibility check; the app reports a refusal at start), on this registry and schema
  only. The aggregator only reads schema versions.
- ``glue:GetSchemaVersion`` is called with the version id alone (the 16 bytes in each
  record), which IAM can only authorize on ``*``; it returns a schema definition, no data.

The definition is stated here because the CDK app imports nothing of adstream; a test
(tests/infra/test_schema_registry.py) ties it to `adstream.events.schemas`.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CfnElement, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from constructs import Construct

from adstream.infra.checks import acknowledge_wildcard_resource

COMPATIBILITY = "BACKWARD"
PRODUCER_SCHEMA_ACTIONS = (
    "glue:GetSchemaByDefinition",
    "glue:RegisterSchemaVersion",
    "glue:GetSchemaVersion",
)
READ_VERSION_ACTIONS = ("glue:GetSchemaVersion",)

AD_EVENT_AVRO_V2: dict[str, Any] = {
    "type": "record",
    "name": "AdEvent",
    "namespace": "io.adstream",
    "doc": "One ad impression or click (adstream wire format, version 2).",
    "fields": [
        {"name": "eventId", "type": "string", "doc": "UUID, for de-duplication"},
        {
            "name": "type",
            "type": {"type": "enum", "name": "EventType", "symbols": ["impression", "click"]},
        },
        {"name": "adId", "type": "string"},
        {"name": "timestamp", "type": "long", "doc": "event time, epoch milliseconds"},
        {"name": "impressions", "type": "int", "default": 1},
        {"name": "campaignId", "type": ["null", "string"], "default": None},
    ],
}
"""AdEvent's Avro schema, version 2 (the version the app writes)."""


class GlueSchemaRegistry(Construct):
    """A Glue registry with AdEvent's value schema, and the roles' permissions on it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        registry_name: str,
        topic: str,
        producer_role: iam.IRole,
        aggregator_role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        self.registry_name = registry_name
        self.schema_name = f"{topic}-value"
        self.registry = glue.CfnRegistry(
            self,
            "Registry",
            name=registry_name,
            description="adstream event schemas (ADSTREAM_SCHEMA_REGISTRY=glue)",
        )
        self.schema = glue.CfnSchema(
            self,
            "AdEventValue",
            name=self.schema_name,
            registry=glue.CfnSchema.RegistryProperty(arn=self.registry.attr_arn),
            data_format="AVRO",
            compatibility=COMPATIBILITY,
            schema_definition=json.dumps(AD_EVENT_AVRO_V2),
            description=f"value of topic {topic}: AdEvent",
        )
        stack = Stack.of(self)
        schema_arn = stack.format_arn(
            service="glue", resource="schema", resource_name=f"{registry_name}/{self.schema_name}"
        )
        producer_policy = iam.Policy(
            self,
            "ProducerSchemaAccess",
            statements=[
                iam.PolicyStatement(
                    actions=list(PRODUCER_SCHEMA_ACTIONS),
                    resources=[self.registry.attr_arn, schema_arn],
                ),
                iam.PolicyStatement(actions=list(READ_VERSION_ACTIONS), resources=["*"]),
            ],
        )
        producer_policy.attach_to_role(producer_role)
        aggregator_policy = iam.Policy(
            self,
            "AggregatorSchemaAccess",
            statements=[iam.PolicyStatement(actions=list(READ_VERSION_ACTIONS), resources=["*"])],
        )
        aggregator_policy.attach_to_role(aggregator_role)
        self._policies = (producer_policy, aggregator_policy)
        for policy in (producer_policy, aggregator_policy):
            acknowledge_wildcard_resource(
                policy,
                "*",
                "glue:GetSchemaVersion takes only the version id carried by each record; IAM "
                "cannot scope it to a schema. It returns schema definitions, not data.",
            )

    def ready(self) -> list[CfnElement]:
        """What the services wait for: the schema, and the roles' grants on it."""
        policies = [policy.node.default_child for policy in self._policies]
        return [self.schema, *(p for p in policies if isinstance(p, CfnElement))]

    def environment(self, region: str) -> dict[str, str]:
        """The task environment that selects this registry (producer and aggregator)."""
        return {
            "ADSTREAM_SCHEMA_REGISTRY": "glue",
            "ADSTREAM_SCHEMA_GLUE_REGISTRY_NAME": self.registry_name,
            "ADSTREAM_SCHEMA_GLUE_REGION": region,
        }
