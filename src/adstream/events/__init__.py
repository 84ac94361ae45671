"""`AdEvent`, its JSON wire format, headers and validation; imports nothing of adstream."""

from adstream.events.ids import id_for_key, uuid7
from adstream.events.model import AD_ID_PATTERN, AdEvent, EventType, InvalidEventError, valid_ad_id

__all__ = [
    "AD_ID_PATTERN",
    "AdEvent",
    "EventType",
    "InvalidEventError",
    "id_for_key",
    "uuid7",
    "valid_ad_id",
]
