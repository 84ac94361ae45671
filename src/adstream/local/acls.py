"""Topics and ACLs of the local broker, as data, applied through the Kafka Admin API.

Least privilege, as on MSK with ACLs: the API writes ``ad-events``; the aggregator
reads it with its own consumer group and writes what it cannot parse to
``ad-events.dlq``. The plaintext listener's principal is
``User:ANONYMOUS``; for local development only it may use ``ad-events`` and
groups prefixed ``adstream-dev``. Never grant ANONYMOUS anything on MSK.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from adstream.kafka.topics import AD_EVENTS_TOPIC, AGGREGATOR_GROUP, DEAD_LETTER_TOPIC

AD_EVENTS_PARTITIONS = 6
TOPICS: dict[str, int] = {AD_EVENTS_TOPIC: AD_EVENTS_PARTITIONS, DEAD_LETTER_TOPIC: 3}
"""Topic name -> partition count; replication factor 1 on the single local node."""
DEV_GROUP_PREFIX = "adstream-dev"


@dataclass(frozen=True)
class Grant:
    """One ALLOW ACL: principal may do operation on a resource."""

    principal: str
    operation: AclOperation
    resource_type: ResourceType
    resource: str
    pattern: ResourcePatternType = ResourcePatternType.LITERAL

    def binding(self) -> AclBinding:
        return AclBinding(
            self.resource_type,
            self.resource,
            self.pattern,
            f"User:{self.principal}",
            "*",
            self.operation,
            AclPermissionType.ALLOW,
        )


def _topic(principal: str, *ops: AclOperation, topic: str = AD_EVENTS_TOPIC) -> list[Grant]:
    return [Grant(principal, op, ResourceType.TOPIC, topic) for op in ops]


LOCAL_GRANTS: tuple[Grant, ...] = (
    *_topic("adstream-api", AclOperation.WRITE, AclOperation.DESCRIBE),
    *_topic("adstream-aggregator", AclOperation.READ, AclOperation.DESCRIBE),
    Grant("adstream-aggregator", AclOperation.READ, ResourceType.GROUP, AGGREGATOR_GROUP),
    *_topic(
        "adstream-aggregator", AclOperation.WRITE, AclOperation.DESCRIBE, topic=DEAD_LETTER_TOPIC
    ),
    *_topic("ANONYMOUS", AclOperation.WRITE, AclOperation.READ, AclOperation.DESCRIBE),
    Grant(
        "ANONYMOUS",
        AclOperation.READ,
        ResourceType.GROUP,
        DEV_GROUP_PREFIX,
        ResourcePatternType.PREFIXED,
    ),
)


def provision(admin: AdminClient, timeout: float = 30.0) -> None:
    """Create the missing topics and apply the grants (both idempotent)."""
    existing = admin.list_topics(timeout=timeout).topics
    missing = [NewTopic(name, count, 1) for name, count in TOPICS.items() if name not in existing]
    if missing:
        for future in admin.create_topics(missing, request_timeout=timeout).values():
            try:
                future.result(timeout)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
    bindings = [g.binding() for g in LOCAL_GRANTS]
    for future in admin.create_acls(bindings).values():
        future.result(timeout)
    _wait_until_visible(admin, bindings, timeout)


def _wait_until_visible(admin: AdminClient, bindings: list[AclBinding], timeout: float) -> None:
    """Block until the broker's authorizer serves the new ACLs.

    ``create_acls`` returns once the controller committed them; the broker applies
    them a moment later, and a client racing in between would be denied.
    """
    # None matches any name, principal and host (the stubs say str, the client allows None).
    everything = AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    deadline = time.monotonic() + timeout
    while True:
        visible = set(admin.describe_acls(everything).result(timeout))
        if visible.issuperset(bindings):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the broker did not apply the ACLs in time")
        time.sleep(0.1)
