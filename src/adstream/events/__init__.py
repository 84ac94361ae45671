"""`AdEvent`, its wire formats (JSON; Avro and JSON Schema schemas for a registry), headers,
limits and validation; imports nothing of adstream."""

from adstream.events.clock import Clock, epoch_ms
from adstream.events.ids import id_for_key, uuid7
from adstream.events.limits import (
    AD_ID_PATTERN,
    MAX_BATCH_EVENTS,
    MAX_IMPRESSIONS,
    MIN_IMPRESSIONS,
    EventTimeWindow,
)
from adstream.events.model import AdEvent, EventType, InvalidEventError, valid_ad_id

__all__ = [
    "AD_ID_PATTERN",
    "MAX_BATCH_EVENTS",
    "MAX_IMPRESSIONS",
    "MIN_IMPRESSIONS",
    "AdEvent",
    "Clock",
    "EventTimeWindow",
    "EventType",
    "InvalidEventError",
    "epoch_ms",
    "id_for_key",
    "uuid7",
    "valid_ad_id",
]
