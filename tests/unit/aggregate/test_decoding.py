from __future__ import annotations

import orjson
import pytest

from adstream.aggregate.decoding import UndecodableRecordError, tally_of
from adstream.aggregate.model import Tally
from adstream.events import AdEvent, EventTimeWindow, InvalidEventError
from adstream.events.formats import RegistryUnavailableError, UndecodableValueError

EVENT_ID = "0192f3a0-7c4e-7cc0-8d3e-1a2b3c4d5e6f"
TS = 1_790_000_065_432  # 25.432 s into a minute
RECEIVED = TS + 1_000
WINDOW = EventTimeWindow(max_age_ms=3_600_000, max_ahead_ms=60_000)


def _tally(value: bytes | None, received: int = RECEIVED) -> Tally:
    return tally_of(value, received, WINDOW)


def _expected(ad: str, imps: int, clicks: int, event_id: str | None) -> Tally:
    return Tally(ad, TS - 25_432, imps, clicks, event_id, timestamp=TS, received_ms=RECEIVED)


def _json(**fields: object) -> bytes:
    return orjson.dumps(fields)


def test_adstream_impression() -> None:
    value = _json(eventId=EVENT_ID, type="impression", adId="AD1", timestamp=TS, impressions=3)
    assert _tally(value) == _expected("AD1", 3, 0, EVENT_ID)


def test_adstream_click_counts_one_click_and_no_impression() -> None:
    value = _json(eventId=EVENT_ID, type="click", adId="AD1", timestamp=TS, impressions=1)
    assert _tally(value) == _expected("AD1", 0, 1, EVENT_ID)


def test_seed_format_from_spring_json_serializer() -> None:
    # Kotlin: data class AdEvent(val adId: String, val timestamp: Long, val impressions: Int)
    value = b'{"adId":"AD123","timestamp":1790000065432,"impressions":1000}'
    assert _tally(value) == _expected("AD123", 1000, 0, None)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty record value"),
        (b"\xff\x01binary", "not JSON"),
        (b"\x00\x01", "not JSON"),  # too short for a schema id
        # Registry-framed (Confluent 0x00 + schema id, Glue 0x03 + version UUID) with no
        # registry configured: a dead letter that says what to set.
        (b"\x00\x00\x00\x00\x07payload", "confluent-framed .* no registry is configured"),
        (b"\x03\x00" + bytes(16) + b"payload", "glue-framed .* no registry is configured"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"adId":"AD1","timestamp":1}', "missing fields: impressions"),
        (b'{"adId":"bad id!","timestamp":1,"impressions":1}', "adId: must match"),
        (b'{"adId":"AD1","timestamp":"yesterday","impressions":1}', "timestamp: must be"),
        (b'{"adId":"AD1","timestamp":1,"impressions":-5}', "impressions: must be"),
        (b'{"adId":"AD1","timestamp":1,"impressions":true}', "impressions: must be"),
        # One rule for both formats: an event of zero impressions is not an event.
        (b'{"adId":"AD1","timestamp":1,"impressions":0}', "impressions: must be .* from 1"),
        (_json(eventId="nope", type="impression", adId="AD1", timestamp=1), "invalid ad event"),
        (_json(eventId=EVENT_ID, type="view", adId="AD1", timestamp=1), "invalid ad event"),
    ],
)
def test_bad_records_say_why(value: bytes | None, reason: str) -> None:
    with pytest.raises(UndecodableRecordError, match=reason):
        _tally(value)


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        (RECEIVED - 3_600_001, "more than 1 hour in the past"),
        (RECEIVED + 60_001, "more than 1 minute in the future"),
        (253_402_300_799_999, "in the future"),  # year 9999, valid as a field
    ],
)
def test_event_time_outside_the_window_around_the_record_time_is_a_dead_letter(
    timestamp: int, reason: str
) -> None:
    for value in (
        _json(eventId=EVENT_ID, type="impression", adId="AD1", timestamp=timestamp),
        _json(adId="AD1", timestamp=timestamp, impressions=1),  # the seed's format too
    ):
        with pytest.raises(UndecodableRecordError, match=reason):
            _tally(value)


def test_window_edges_are_inside() -> None:
    for ts in (RECEIVED - 3_600_000, RECEIVED + 60_000):
        value = _json(adId="AD1", timestamp=ts, impressions=1)
        assert _tally(value).timestamp == ts


@pytest.mark.parametrize(
    "fields",
    [
        {"eventId": EVENT_ID.upper(), "type": "click", "adId": "AD1", "timestamp": TS},
        {"eventId": "{" + EVENT_ID + "}", "type": "click", "adId": "AD1", "timestamp": TS},
        {"eventId": EVENT_ID.replace("-", ""), "type": "click", "adId": "AD1", "timestamp": TS},
        {"eventId": 7, "type": "click", "adId": "AD1", "timestamp": TS},
        {"eventId": EVENT_ID, "type": "click", "adId": "AD1", "timestamp": TS, "x": 1},
        {"eventId": EVENT_ID, "type": "view", "adId": "AD1", "timestamp": TS},
        {
            "eventId": EVENT_ID,
            "type": "impression",
            "adId": "AD1",
            "timestamp": TS,
            "impressions": 0,
        },
        {"eventId": EVENT_ID, "type": "impression", "adId": "AD 1", "timestamp": TS},
    ],
)
def test_the_aggregator_and_the_api_accept_the_same_events(fields: dict[str, object]) -> None:
    """One set of wire rules: the aggregator counts exactly what `AdEvent` accepts."""
    try:
        expected: str | None = str(AdEvent.from_dict(fields).event_id)
    except InvalidEventError:
        expected = None
    try:
        counted: str | None = _tally(_json(**fields)).event_id
    except UndecodableRecordError:
        counted = None
    assert counted == expected


def test_framed_records_go_through_the_registry_decoder_and_the_same_rules() -> None:
    seen: list[bytes] = []

    def framed(raw: bytes) -> dict[str, object]:
        seen.append(raw)
        return {
            "eventId": EVENT_ID,
            "type": "click",
            "adId": "AD9",
            "timestamp": 1,
            "impressions": 1,
            "campaignId": None,
        }

    value = b"\x00\x00\x00\x00\x02avro-bytes"
    tally = tally_of(value, RECEIVED, EventTimeWindow(RECEIVED, 60_000), framed)
    assert seen == [value]
    assert (tally.ad_id, tally.clicks, tally.impressions, tally.event_id) == ("AD9", 1, 0, EVENT_ID)


def test_a_framed_record_no_schema_reads_is_a_dead_letter_naming_the_cause() -> None:
    def framed(raw: bytes) -> dict[str, object]:
        raise UndecodableValueError("schema id 7 is unknown to the registry")

    with pytest.raises(UndecodableRecordError, match="confluent-framed record: schema id 7"):
        tally_of(b"\x00\x00\x00\x00\x07x", RECEIVED, EventTimeWindow(), framed)


def test_an_unreachable_registry_is_not_a_dead_letter() -> None:
    def framed(raw: bytes) -> dict[str, object]:
        raise RegistryUnavailableError("connection refused")

    with pytest.raises(RegistryUnavailableError):
        tally_of(b"\x00\x00\x00\x00\x07x", RECEIVED, EventTimeWindow(), framed)
