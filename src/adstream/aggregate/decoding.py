"""Turn a Kafka record into the tally it adds, or say exactly why it cannot be counted.

Two formats are accepted: adstream's own (`events.wire`, with ``eventId`` and
``type``) and the seed's Spring Kafka ``JsonSerializer`` output
(``{"adId","timestamp","impressions"}``, maybe with a ``__TypeId__`` header), which
counts as impressions and is de-duplicated by offset only.
"""

from __future__ import annotations

import orjson

from adstream.aggregate.model import Tally, minute_of
from adstream.events.model import MAX_IMPRESSIONS, MAX_TIMESTAMP_MS, EventType, valid_ad_id
from adstream.events.wire import WireError, decode

SEED_FIELDS = frozenset({"adId", "timestamp", "impressions"})


class UndecodableRecordError(ValueError):
    """The record is not an ad event; the message is the dead-letter reason."""


def tally_of(value: bytes | None) -> Tally:
    if value is None:
        raise UndecodableRecordError("empty record value")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise UndecodableRecordError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UndecodableRecordError("not a JSON object")
    if "eventId" in data or "type" in data:
        return _adstream_event(value)
    return _seed_event(data)


def _adstream_event(value: bytes) -> Tally:
    try:
        event = decode(value)
    except WireError as exc:
        raise UndecodableRecordError(f"invalid ad event: {exc}") from exc
    clicked = event.type is EventType.CLICK
    return Tally(
        ad_id=event.ad_id,
        minute=minute_of(event.timestamp),
        impressions=0 if clicked else event.impressions,
        clicks=1 if clicked else 0,
        event_id=str(event.event_id),
    )


def _seed_event(data: dict[str, object]) -> Tally:
    missing = SEED_FIELDS - set(data)
    if missing:
        raise UndecodableRecordError(f"missing fields: {', '.join(sorted(missing))}")
    ad_id, timestamp, impressions = data["adId"], data["timestamp"], data["impressions"]
    if not isinstance(ad_id, str) or not valid_ad_id(ad_id):
        raise UndecodableRecordError("adId must match [A-Za-z0-9._-]{1,64}")
    if not _int_in(timestamp, 0, MAX_TIMESTAMP_MS):
        raise UndecodableRecordError("timestamp must be epoch milliseconds")
    if not _int_in(impressions, 0, MAX_IMPRESSIONS):
        raise UndecodableRecordError(f"impressions must be an integer from 0 to {MAX_IMPRESSIONS}")
    assert isinstance(timestamp, int)
    assert isinstance(impressions, int)
    return Tally(ad_id=ad_id, minute=minute_of(timestamp), impressions=impressions, clicks=0)


def _int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
