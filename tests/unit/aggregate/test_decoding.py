from __future__ import annotations

import orjson
import pytest

from adstream.aggregate.decoding import UndecodableRecordError, tally_of
from adstream.aggregate.model import Tally

EVENT_ID = "0192f3a0-7c4e-7cc0-8d3e-1a2b3c4d5e6f"
TS = 1_790_000_065_432  # 25.432 s into a minute


def _json(**fields: object) -> bytes:
    return orjson.dumps(fields)


def test_adstream_impression() -> None:
    value = _json(eventId=EVENT_ID, type="impression", adId="AD1", timestamp=TS, impressions=3)
    assert tally_of(value) == Tally("AD1", TS - 25_432, 3, 0, EVENT_ID)


def test_adstream_click_counts_one_click_and_no_impression() -> None:
    value = _json(eventId=EVENT_ID, type="click", adId="AD1", timestamp=TS, impressions=1)
    assert tally_of(value) == Tally("AD1", TS - 25_432, 0, 1, EVENT_ID)


def test_seed_format_from_spring_json_serializer() -> None:
    # Kotlin: data class AdEvent(val adId: String, val timestamp: Long, val impressions: Int)
    value = b'{"adId":"AD123","timestamp":1790000065432,"impressions":1000}'
    assert tally_of(value) == Tally("AD123", TS - 25_432, 1000, 0, None)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty record value"),
        (b"\x00\x01binary", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"adId":"AD1","timestamp":1}', "missing fields: impressions"),
        (b'{"adId":"bad id!","timestamp":1,"impressions":1}', "adId must match"),
        (b'{"adId":"AD1","timestamp":"yesterday","impressions":1}', "timestamp must be"),
        (b'{"adId":"AD1","timestamp":1,"impressions":-5}', "impressions must be"),
        (b'{"adId":"AD1","timestamp":1,"impressions":true}', "impressions must be"),
        (_json(eventId="nope", type="impression", adId="AD1", timestamp=1), "invalid ad event"),
        (_json(eventId=EVENT_ID, type="view", adId="AD1", timestamp=1), "invalid ad event"),
    ],
)
def test_bad_records_say_why(value: bytes | None, reason: str) -> None:
    with pytest.raises(UndecodableRecordError, match=reason):
        tally_of(value)
