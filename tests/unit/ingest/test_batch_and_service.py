"""Batch body decoding and the service's all-or-nothing validation (no broker needed)."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import KafkaError, Producer

from adstream.events import EventTimeWindow, EventType
from adstream.ingest import batch
from adstream.ingest.config import ApiSettings
from adstream.ingest.errors import (
    BrokerUnavailableError,
    DeliveryFailedError,
    DeliveryTimeoutError,
    QueueFullError,
)
from adstream.ingest.publisher import AdEventPublisher, classify
from adstream.ingest.service import IngestService, InvalidBatchError, InvalidIdempotencyKeyError

NOW = 1_790_000_000_000
MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS


@pytest.fixture
def service() -> IngestService:
    # An unreachable producer: these paths never publish.
    producer = Producer({"bootstrap.servers": "127.0.0.1:1", "log_level": 0})
    return IngestService(
        AdEventPublisher(producer, "ad-events"),
        clock=lambda: NOW,
        window=EventTimeWindow(max_age_ms=7 * DAY_MS, max_ahead_ms=5 * MINUTE_MS),
    )


def test_json_array_and_ndjson_decode_to_entries() -> None:
    assert batch.decode(b'[{"adId":"a"},{"adId":"b"}]', "application/json; charset=utf-8", 10) == [
        {"adId": "a"},
        {"adId": "b"},
    ]
    ndjson = b'{"adId":"a"}\n\n{"adId":"b"}\n'
    assert batch.decode(ndjson, "application/x-ndjson", 10) == [{"adId": "a"}, {"adId": "b"}]


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"[]", "application/json", batch.MalformedBatchError),
        (b'{"adId":"a"}', "application/json", batch.MalformedBatchError),
        (b'{"adId":"a"}\n{', "application/x-ndjson", batch.MalformedBatchError),
        (b'[{"adId":"a"}]', "text/plain", batch.UnsupportedMediaTypeError),
        (b'[{"adId":"a"}]', None, batch.UnsupportedMediaTypeError),
        (b'[{"adId":"a"},{"adId":"b"},{"adId":"c"}]', "application/json", batch.BatchTooLargeError),
    ],
)
def test_bad_batches_raise_the_matching_error(
    body: bytes, content_type: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        batch.decode(body, content_type, 2)


def test_batch_defaults_and_idempotent_ids(service: IngestService) -> None:
    first = service.parse_batch([{"adId": "a"}, {"adId": "b", "type": "click"}], "key-1")
    again = service.parse_batch([{"adId": "a"}, {"adId": "b", "type": "click"}], "key-1")
    assert [e.type for e in first] == [EventType.IMPRESSION, EventType.CLICK]
    assert [e.timestamp for e in first] == [NOW, NOW]
    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert first[0].event_id != first[1].event_id
    explicit = str(uuid.uuid4())
    assert str(service.parse_batch([{"adId": "a", "eventId": explicit}])[0].event_id) == explicit


def test_a_batch_without_key_gets_new_increasing_ids_and_keeps_given_ones(
    service: IngestService,
) -> None:
    given = str(uuid.uuid4())
    entries: list[object] = [{"adId": "a"}, {"adId": "b", "eventId": given}, {"adId": "a"}]
    first, second = service.parse_batch(entries), service.parse_batch(entries)
    new_ids = [first[0].event_id, first[2].event_id, second[0].event_id, second[2].event_id]
    assert str(first[1].event_id) == str(second[1].event_id) == given
    assert all(i.version == 7 for i in new_ids)
    assert new_ids == sorted(new_ids)
    assert len(set(new_ids)) == 4
    with pytest.raises(InvalidBatchError) as raised:  # a non-object entry is refused by index
        service.parse_batch([{"adId": "a"}, "not an object", {"adId": "b"}])
    assert [e["index"] for e in raised.value.errors] == [1]


def _ids(service: IngestService, entries: list[object], key: str) -> list[uuid.UUID]:
    return [e.event_id for e in service.parse_batch(entries, key)]


def test_a_replayed_batch_has_the_same_ids_in_any_order(service: IngestService) -> None:
    entries: list[object] = [{"adId": "a"}, {"adId": "b", "impressions": 5}, {"adId": "a"}]
    first = _ids(service, entries, "key-1")
    reordered = _ids(service, [entries[1], entries[0], entries[2]], "key-1")
    assert len(set(first)) == 3  # identical entries are distinct events
    assert set(reordered) == set(first)
    # The same event keeps its id: b's id follows b, not its position.
    assert reordered[0] == first[1]


def test_a_replay_with_another_body_gets_new_ids_for_the_new_entries(
    service: IngestService,
) -> None:
    first = _ids(service, [{"adId": "a"}, {"adId": "b"}], "key-2")
    changed = _ids(service, [{"adId": "a"}, {"adId": "c"}], "key-2")
    assert changed[0] == first[0]  # the repeated entry is a duplicate the aggregator drops
    assert changed[1] not in first  # the new entry is counted, not silently dropped
    assert _ids(service, [{"adId": "a"}], "other-key")[0] != first[0]


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        (NOW - 7 * DAY_MS - 1, "is more than 7 days in the past"),
        (NOW + 5 * MINUTE_MS + 1, "is more than 5 minutes in the future"),
        (253_402_300_799_999, "in the future"),
    ],
)
def test_timestamps_outside_the_window_are_refused(
    service: IngestService, timestamp: int, reason: str
) -> None:
    with pytest.raises(InvalidBatchError) as raised:
        service.parse_batch([{"adId": "ok"}, {"adId": "x", "timestamp": timestamp}])
    assert [e["index"] for e in raised.value.errors] == [1]
    assert reason in raised.value.errors[0]["errors"]["timestamp"]
    edges = [{"adId": "x", "timestamp": t} for t in (NOW - 7 * DAY_MS, NOW + 5 * MINUTE_MS)]
    assert len(service.parse_batch(edges)) == 2


def test_batch_reports_every_bad_entry_by_index(service: IngestService) -> None:
    with pytest.raises(InvalidBatchError) as raised:
        service.parse_batch([{"adId": "ok"}, {"adId": ""}, 7, {"adId": "x", "impressions": "1"}])
    assert [e["index"] for e in raised.value.errors] == [1, 2, 3]
    assert raised.value.errors[2]["errors"] == {
        "impressions": "must be an integer from 1 to 1000000"
    }


def test_idempotency_key_must_be_visible_ascii(service: IngestService) -> None:
    with pytest.raises(InvalidIdempotencyKeyError):
        service.new_event("AD1", EventType.CLICK, "tab\tkey")
    same = service.new_event("AD1", EventType.CLICK, "k")
    assert same.event_id == service.new_event("AD1", EventType.CLICK, "k").event_id


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (KafkaError._MSG_TIMED_OUT, DeliveryTimeoutError),
        (KafkaError._QUEUE_FULL, QueueFullError),
        (KafkaError._TRANSPORT, BrokerUnavailableError),
        (KafkaError.NOT_ENOUGH_REPLICAS, BrokerUnavailableError),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, DeliveryFailedError),
        (KafkaError.MSG_SIZE_TOO_LARGE, DeliveryFailedError),
    ],
)
def test_delivery_errors_are_classified(code: int, expected: type[Exception]) -> None:
    retriable = code == KafkaError.NOT_ENOUGH_REPLICAS
    assert type(classify(KafkaError(code, retriable=retriable))) is expected


def test_api_settings_become_librdkafka_properties() -> None:
    props = ApiSettings(delivery_timeout_s=2.5, queue_max_messages=7).producer_overrides()
    assert props["message.timeout.ms"] == 2500
    assert props["request.timeout.ms"] == 2500
    assert props["queue.buffering.max.messages"] == 7
