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
