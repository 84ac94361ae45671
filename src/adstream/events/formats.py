"""Which wire format a producer writes, and the two seams every format plugs into.

``json`` is today's format (`events.wire`), kept as the default and as the fast path.
``avro`` and ``jsonschema`` write through a schema registry (Confluent-compatible or AWS
Glue, see `adstream.kafka.schema_registry`): the record carries its schema's id in a
framing (`events.schemas`), the registry refuses a schema that breaks its readers.
Readers accept every format on one topic, so producers can switch one at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from adstream.events import wire
from adstream.events.model import AdEvent, EventType
from adstream.events.wire import Headers


class EventFormat(StrEnum):
    JSON = "json"
    AVRO = "avro"
    JSONSCHEMA = "jsonschema"


CONTENT_TYPES: dict[EventFormat, str] = {
    EventFormat.JSON: wire.CONTENT_TYPE,
    EventFormat.AVRO: "application/vnd.adstream.avro+framed",
    EventFormat.JSONSCHEMA: "application/vnd.adstream.jsonschema+framed",
}
"""The ``content-type`` header per format (framed: a registry's schema id comes first)."""


class EventEncoder(Protocol):
    """Turns an event into a record value and headers; the publisher calls it per event."""

    def value(self, event: AdEvent) -> bytes: ...
    def headers(self, event: AdEvent, caller: str | None = None) -> Headers: ...


class JsonEncoder:
    """Today's format: `events.wire` itself, no registry, no framing."""

    value = staticmethod(wire.value)
    headers = staticmethod(wire.headers)


JSON_ENCODER = JsonEncoder()

FramedDecoder = Callable[[bytes], dict[str, object]]
"""Decodes a framed record (Confluent or Glue) into the wire form's dict; raises
`UndecodableValueError` when no schema can read it, and `RegistryUnavailableError` when
the registry could not be asked (the record may be fine: it must not be dead-lettered)."""


class UndecodableValueError(ValueError):
    """A framed record no schema reads (unknown schema id, corrupt payload)."""


class RegistryUnavailableError(RuntimeError):
    """The schema registry could not be reached or failed: retry later, do not drop."""


def registry_headers(event_format: EventFormat, schema_version: int) -> dict[EventType, Headers]:
    """The shared header list per event type for a registry format."""
    return {
        kind: [
            (wire.HEADER_EVENT_TYPE, kind.value.encode()),
            (wire.HEADER_SCHEMA_VERSION, str(schema_version).encode()),
            (wire.HEADER_CONTENT_TYPE, CONTENT_TYPES[event_format].encode()),
        ]
        for kind in EventType
    }
