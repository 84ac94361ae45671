"""What an aggregator instance reads, where its dead letters go, and how it batches."""

from __future__ import annotations

from dataclasses import dataclass, field

from adstream.events import EventTimeWindow
from adstream.kafka.topics import AD_EVENTS_TOPIC, AGGREGATOR_GROUP, DEAD_LETTER_TOPIC

RECEIVE_GRACE_MS = 60_000
"""Slack beyond the API's event-time window: the API reads its clock a moment before the
producer stamps the record, so an event the API accepted is never dead-lettered here."""


@dataclass(frozen=True)
class AggregatorConfig:
    topic: str = AD_EVENTS_TOPIC
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    group: str = AGGREGATOR_GROUP
    instance_id: str | None = None  # static membership: restarts skip the rebalance wait
    batch_size: int = 5000
    batch_wait_s: float = 0.2
    # A partition whose record cannot be dead-lettered is re-read after this delay, doubled
    # on each failure up to the maximum: a permanent cause does not spin, a transient one heals.
    blocked_retry_s: float = 1.0
    blocked_retry_max_s: float = 60.0
    event_window: EventTimeWindow = field(default_factory=EventTimeWindow)

    @property
    def accepted_window(self) -> EventTimeWindow:
        """Event times the aggregator counts, around each record's Kafka timestamp."""
        return self.event_window.widened(RECEIVE_GRACE_MS)
