"""Topic and consumer-group names, defined once: every module imports them from here.

(The CDK app in `adstream.infra` imports nothing of adstream and states them again.)
"""

from __future__ import annotations

AD_EVENTS_TOPIC = "ad-events"
AGGREGATOR_GROUP = "adstream-aggregator"
DEAD_LETTER_SUFFIX = ".dlq"


def dead_letter_topic(topic: str) -> str:
    """Where the aggregator sends the records of `topic` it cannot count."""
    return f"{topic}{DEAD_LETTER_SUFFIX}"


DEAD_LETTER_TOPIC = dead_letter_topic(AD_EVENTS_TOPIC)

ICEBERG_CONNECTOR = "adstream-iceberg"
"""The Iceberg sink connector's name; Kafka Connect names its consumer group after it."""
ICEBERG_CONTROL_TOPIC = "adstream-iceberg-control"
"""The Iceberg sink's control topic (long retention in deploy/kafka.yaml: apache/iceberg #17551)."""
ICEBERG_CONNECT_GROUP = f"connect-{ICEBERG_CONNECTOR}"
"""The sink's consumer group; its coordinator's and control consumers' groups start with it."""
ICEBERG_TRANSACTIONAL_PREFIX = f"{ICEBERG_CONNECTOR}-"
"""Every transactional id of the sink starts with this (granted as a prefix)."""
