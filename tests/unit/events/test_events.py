"""AdEvent validation, ids and the Kafka wire format."""

from __future__ import annotations

import uuid

import orjson
import pytest

from adstream.events import (
    AdEvent,
    EventType,
    InvalidEventError,
    id_for_key,
    model,
    uuid7,
    valid_ad_id,
    wire,
)
from adstream.events.ids import Uuid7Generator


def _event(**overrides: object) -> AdEvent:
    fields: dict[str, object] = {
        "event_id": uuid7(),
        "ad_id": "AD123",
        "type": EventType.IMPRESSION,
        "timestamp": 1_700_000_000_000,
        "impressions": 1,
    }
    return AdEvent.create(**{**fields, **overrides})  # type: ignore[arg-type]


def test_uuid7_builds_the_same_object_as_the_uuid_constructor() -> None:
    for made in [uuid7() for _ in range(100)]:
        same = uuid.UUID(int=made.int)
        assert made == same
        assert hash(made) == hash(same)
        assert str(made) == str(same)
        assert made.is_safe == same.is_safe
        assert type(made) is uuid.UUID
        assert uuid.UUID(str(made)) == made
        assert made.version == 7


def test_uuid7_is_version_7_and_strictly_increasing_within_a_millisecond() -> None:
    generate = Uuid7Generator(clock_ms=lambda: 1_700_000_000_000)
    ids = [generate() for _ in range(5000)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert ids[0].int >> 80 == 1_700_000_000_000
    assert ids[-1].int >> 80 == 1_700_000_000_001  # 4096 ids per ms, then the next ms


def test_uuid7_stays_ordered_when_the_clock_steps_back() -> None:
    times = iter([2_000, 1_000, 1_500, 2_001])
    generate = Uuid7Generator(clock_ms=lambda: next(times))
    ids = [generate() for _ in range(4)]
    assert ids == sorted(ids)
    assert [i.int >> 80 for i in ids] == [2_000, 2_000, 2_000, 2_001]


def test_uuid7_many_continues_the_same_sequence_as_single_ids() -> None:
    """A batch's ids come from the same counter: strictly increasing with the single ids
    before and after them, and a full counter carries into the next millisecond."""
    generate = Uuid7Generator(clock_ms=lambda: 1_700_000_000_000)
    ids = [generate(), *generate.many(5000), generate(), *generate.many(3), generate()]
    assert len(ids) == 5006
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert [i.int >> 80 for i in (ids[0], ids[4095], ids[4096], ids[-1])] == [
        1_700_000_000_000,
        1_700_000_000_000,
        1_700_000_000_001,
        1_700_000_000_001,
    ]
    assert (ids[4096].int >> 64) & 0xFFF == 0  # the counter starts again in the next ms
    assert generate.many(0) == []
    assert generate() > ids[-1]


def test_uuid7_many_follows_the_clock_and_survives_a_step_back() -> None:
    times = iter([5_000, 4_000, 6_000])
    generate = Uuid7Generator(clock_ms=lambda: next(times))
    first, back, later = generate.many(2), generate.many(2), generate.many(2)
    assert first + back + later == sorted(first + back + later)
    assert [i.int >> 80 for i in first + back + later] == [5_000] * 4 + [6_000] * 2
    assert all(type(i) is uuid.UUID and uuid.UUID(str(i)) == i for i in first)


def test_idempotency_key_id_is_stable_and_scoped() -> None:
    assert id_for_key("k1", "click/AD1") == id_for_key("k1", "click/AD1")
    assert id_for_key("k1", "click/AD1") != id_for_key("k1", "impression/AD1")
    assert id_for_key("k1") != id_for_key("k2")


@pytest.mark.parametrize("ad_id", ["", "a" * 65, "a b", "a/b", "é", "a\n"])
def test_bad_ad_id_is_rejected(ad_id: str) -> None:
    with pytest.raises(InvalidEventError) as raised:
        _event(ad_id=ad_id)
    assert set(raised.value.errors) == {"adId"}


@pytest.mark.parametrize("ad_id", ["a", "A" * 64, "ad.1_x-Y"])
def test_good_ad_id_is_accepted(ad_id: str) -> None:
    assert _event(ad_id=ad_id).ad_id == ad_id


def test_wire_value_is_byte_for_byte_the_json_of_to_dict() -> None:
    """`wire.value` lets orjson write the UUID and the enum: the same bytes as before."""
    events = [
        _event(type=kind, impressions=n, campaign_id=campaign, event_id=event_id)
        for kind in EventType
        for n in (1, 1_000_000)
        for campaign in (None, "c-1", 'quote" \\ é')
        for event_id in (uuid7(), id_for_key("k", "s"), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1))
    ]
    for event in events:
        assert wire.value(event) == orjson.dumps(event.to_dict())
        assert wire.decode(wire.value(event)) == event


def test_ad_ids_seen_valid_are_remembered_and_invalid_ones_never() -> None:
    for _ in range(2):  # the second round answers from the remembered set
        assert valid_ad_id("AD-remembered_1.x")
        assert not valid_ad_id("AD 1")
        assert not valid_ad_id("A" * 65)
        assert not valid_ad_id("AD1\n")
        assert not valid_ad_id(["AD1"])
        assert not valid_ad_id(1)
    assert "AD-remembered_1.x" in model._KNOWN_AD_IDS
    assert "AD 1" not in model._KNOWN_AD_IDS


def test_the_remembered_ad_ids_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model, "_KNOWN_AD_IDS", set())
    monkeypatch.setattr(model, "_MAX_KNOWN_AD_IDS", 3)
    assert all(valid_ad_id(f"AD{i}") for i in range(10))
    assert len(model._KNOWN_AD_IDS) == 3


def test_from_dict_lists_every_bad_field() -> None:
    with pytest.raises(InvalidEventError) as raised:
        AdEvent.from_dict(
            {"eventId": "x", "type": "view", "adId": 1, "timestamp": True, "impressions": 0, "z": 1}
        )
    assert set(raised.value.errors) == {"$", "eventId", "type", "adId", "timestamp", "impressions"}


def test_wire_uses_the_seed_field_names_and_round_trips() -> None:
    event = _event(type=EventType.CLICK, impressions=3)
    body = orjson.loads(wire.value(event))
    assert body == {
        "eventId": str(event.event_id),
        "type": "click",
        "adId": "AD123",
        "timestamp": 1_700_000_000_000,
        "impressions": 3,
    }
    assert wire.decode(wire.value(event)) == event
    assert wire.key(event) == b"AD123"
    assert dict(wire.headers(event)) == {
        "ad-event-type": b"click",
        "ad-event-schema-version": b"1",
        "content-type": b"application/json",
    }


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"adId": "x"}'])
def test_decode_rejects_what_is_not_an_event(raw: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(raw)


def test_the_caller_header_is_written_and_read_back() -> None:
    from adstream.events import wire

    event = AdEvent.create(event_id=uuid.uuid4(), ad_id="AD1", type=EventType.CLICK, timestamp=1)
    assert wire.caller_of(wire.headers(event)) is None
    headers = wire.headers(event, "adserver-eu")
    assert (wire.HEADER_CALLER, b"adserver-eu") in headers
    assert wire.caller_of(headers) == "adserver-eu"
    assert wire.headers(event) == wire.headers(event, None)  # the caller-less list is unchanged
    assert wire.caller_of([(wire.HEADER_CALLER, None)]) is None
