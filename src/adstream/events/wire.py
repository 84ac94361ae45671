"""The Kafka wire format of `AdEvent`: UTF-8 JSON value, key = adId, typed headers.

Java/Kotlin consumers read it with a `StringDeserializer` or Spring's `JsonDeserializer`
into the seed's `AdEvent` (unknown fields such as `eventId` are ignored by Spring's
ObjectMapper). The key is the adId's UTF-8 bytes, so Java's default partitioner and
librdkafka's `murmur2_random` put an ad on the same partition.
"""

from __future__ import annotations

import orjson

from adstream.events.model import AdEvent, EventType

SCHEMA_VERSION = "1"
HEADER_EVENT_TYPE = "ad-event-type"
HEADER_SCHEMA_VERSION = "ad-event-schema-version"
HEADER_CONTENT_TYPE = "content-type"
CONTENT_TYPE = "application/json"

Headers = list[tuple[str, str | bytes | None]]


class WireError(ValueError):
    """A Kafka record is not a valid `AdEvent`."""


def key(event: AdEvent) -> bytes:
    return event.ad_id.encode()


def value(event: AdEvent) -> bytes:
    return orjson.dumps(event.to_dict())


_HEADERS: dict[EventType, Headers] = {
    kind: [
        (HEADER_EVENT_TYPE, kind.value.encode()),
        (HEADER_SCHEMA_VERSION, SCHEMA_VERSION.encode()),
        (HEADER_CONTENT_TYPE, CONTENT_TYPE.encode()),
    ]
    for kind in EventType
}


def headers(event: AdEvent) -> Headers:
    """The record headers (a shared list per event type: read it, do not modify it)."""
    return _HEADERS[event.type]


def decode(raw: bytes) -> AdEvent:
    """Parse a record value; raises `WireError` for bad JSON or invalid fields."""
    try:
        return AdEvent.from_dict(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise WireError(str(exc)) from exc
