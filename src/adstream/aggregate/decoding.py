"""Turn a Kafka record into the tally it adds, or say exactly why it cannot be counted.

Two formats are accepted: adstream's own (`events.wire`, with ``eventId`` and
``type``) and the seed's Spring Kafka ``JsonSerializer`` output
(``{"adId","timestamp","impressions"}``, maybe with a ``__TypeId__`` header), which
counts as impressions and is de-duplicated by offset only. Both obey the same field
rules (`events.model.check_fields`) and the same event-time window, measured from the
record's Kafka timestamp (when the event was received), not from the aggregator's clock,
so re-reading old records gives the same verdicts.

Records framed by a schema registry (Avro or JSON Schema, Confluent's ``0x00`` or Glue's
``0x03`` first byte, see `events.schemas`) are decoded by the `FramedDecoder` the
aggregator was given, then obey the same rules as adstream's JSON. Without a decoder, or
when no schema reads them, they are dead letters; when the registry cannot be asked,
`RegistryUnavailableError` propagates: the batch is not committed and is read again.
JSON is tried first, so the JSON path costs nothing more than before.
"""

from __future__ import annotations

import orjson

from adstream.aggregate.model import Tally, minute_of
from adstream.events.formats import FramedDecoder, UndecodableValueError
from adstream.events.limits import EventTimeWindow
from adstream.events.model import EventType, InvalidEventError, check_fields, parse_wire
from adstream.events.schemas import framing_of

SEED_FIELDS = frozenset({"adId", "timestamp", "impressions"})


class UndecodableRecordError(ValueError):
    """The record is not an ad event; the message is the dead-letter reason."""


def tally_of(
    value: bytes | None,
    received_ms: int,
    window: EventTimeWindow,
    framed: FramedDecoder | None = None,
) -> Tally:
    """The tally of one record received (Kafka timestamp) at `received_ms`."""
    tally = _decode(value, received_ms, framed)
    late_or_early = window.violation(tally.timestamp, received_ms)
    if late_or_early is not None:
        raise UndecodableRecordError(
            f"timestamp {tally.timestamp} is {late_or_early} of the record's time {received_ms}"
        )
    return tally


def _decode(value: bytes | None, received_ms: int, framed: FramedDecoder | None) -> Tally:
    if value is None:
        raise UndecodableRecordError("empty record value")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        framing = framing_of(value)
        if framing is None:
            raise UndecodableRecordError(f"not JSON: {exc}") from exc
        return _adstream_event(_unframe(value, framing, framed), received_ms)
    if not isinstance(data, dict):
        raise UndecodableRecordError("not a JSON object")
    if "eventId" in data or "type" in data:
        return _adstream_event(data, received_ms)
    return _seed_event(data, received_ms)


def _unframe(value: bytes, framing: str, framed: FramedDecoder | None) -> dict[str, object]:
    if framed is None:
        raise UndecodableRecordError(
            f"{framing}-framed record (schema registry) but no registry is configured: "
            "set ADSTREAM_SCHEMA_REGISTRY_URL (or ADSTREAM_SCHEMA_REGISTRY=glue)"
        )
    try:
        return framed(value)
    except UndecodableValueError as exc:
        raise UndecodableRecordError(f"{framing}-framed record: {exc}") from exc


def _adstream_event(data: dict[str, object], received_ms: int) -> Tally:
    try:
        event_id, kind, ad_id, timestamp, impressions = parse_wire(data)
    except InvalidEventError as exc:
        raise UndecodableRecordError(f"invalid ad event: {exc}") from exc
    clicked = kind is EventType.CLICK
    return Tally(
        ad_id,
        minute_of(timestamp),
        0 if clicked else impressions,
        1 if clicked else 0,
        event_id,
        timestamp,
        received_ms,
    )


def _seed_event(data: dict[str, object], received_ms: int) -> Tally:
    missing = SEED_FIELDS - set(data)
    if missing:
        raise UndecodableRecordError(f"missing fields: {', '.join(sorted(missing))}")
    ad_id, timestamp, impressions = data["adId"], data["timestamp"], data["impressions"]
    errors = check_fields(ad_id, timestamp, impressions)
    if errors:
        raise UndecodableRecordError("; ".join(f"{k}: {v}" for k, v in errors.items()))
    assert isinstance(ad_id, str)
    assert isinstance(timestamp, int)
    assert isinstance(impressions, int)
    return Tally(
        ad_id=ad_id,
        minute=minute_of(timestamp),
        impressions=impressions,
        clicks=0,
        timestamp=timestamp,
        received_ms=received_ms,
    )
