"""The aggregator against the real broker: counts, duplicates, seed-format events, dead letters."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import generate_latest

from adstream.aggregate.dead_letters import REASON_HEADER
from adstream.aggregate.model import MINUTE_MS
from adstream.aggregate.store import SqlCountStore
from adstream.local.broker import LocalBroker
from tests.integration.aggregate_helpers import (
    RECENT_MINUTE,
    PrivateTopic,
    RunningAggregator,
    admin_producer,
    event,
    send_event,
    wait_until,
)
from tests.integration.kafka_helpers import admin_consumer, read_all

pytestmark = pytest.mark.integration

T0 = RECENT_MINUTE


def test_counts_impressions_and_clicks_per_ad_and_minute(
    broker: LocalBroker, topic: PrivateTopic, store: SqlCountStore
) -> None:
    producer = admin_producer(broker)
    retried = event("AD1", T0 + 1_000)
    for e in [
        retried,
        retried,
        event("AD1", T0 + 2_000, impressions=4),
        event("AD1", T0 + 3_000, click=True),
    ]:
        send_event(producer, topic.topic, e)
    send_event(producer, topic.topic, event("AD2", T0 + MINUTE_MS + 5))
    # A late event for an earlier minute updates that minute.
    send_event(producer, topic.topic, event("AD1", T0 - MINUTE_MS + 59_999))
    assert producer.flush(20) == 0
    with RunningAggregator(broker, topic, store) as running:
        wait_until(lambda: running.counted("counted") + running.counted("duplicate") == 6)
    assert list(store.totals()) == [
        ("AD1", T0 - MINUTE_MS, 1, 0),
        ("AD1", T0, 5, 1),
        ("AD2", T0 + MINUTE_MS, 1, 0),
    ]
    assert running.counted("duplicate") == 1
    assert store.load_offsets(topic.topic) == _end_offsets(broker, topic.topic)


def test_metrics_report_consumer_lag_per_partition(
    broker: LocalBroker, topic: PrivateTopic, store: SqlCountStore
) -> None:
    producer = admin_producer(broker)
    for i in range(30):
        send_event(producer, topic.topic, event(f"AD{i}", T0))
    assert producer.flush(20) == 0
    with RunningAggregator(broker, topic, store) as running:
        wait_until(lambda: running.counted("counted") == 30)

        def lags() -> dict[str, float]:
            samples = running.metrics.lag.collect()[0].samples
            return {
                s.labels["partition"]: s.value for s in samples if s.labels["topic"] == topic.topic
            }

        wait_until(lambda: len(lags()) == 3 and set(lags().values()) == {0.0}, timeout=15)
    text = generate_latest(running.metrics.registry).decode()
    assert 'adstream_aggregator_events_total{outcome="counted"} 30.0' in text


def test_seed_format_events_are_counted(
    broker: LocalBroker, topic: PrivateTopic, store: SqlCountStore
) -> None:
    producer = admin_producer(broker)
    for ts in (T0, T0 + 10):
        producer.produce(
            topic.topic,
            key=b"AD123",
            value=b'{"adId":"AD123","timestamp":%d,"impressions":1000}' % ts,
            headers=[("__TypeId__", b"com.example.ads.AdEvent")],
        )
    assert producer.flush(20) == 0
    with RunningAggregator(broker, topic, store) as running:
        wait_until(lambda: running.counted("counted") == 2)
    assert list(store.totals()) == [("AD123", T0, 2000, 0)]


def test_bad_records_go_to_the_dead_letter_topic_with_the_reason(
    broker: LocalBroker, topic: PrivateTopic, store: SqlCountStore
) -> None:
    producer = admin_producer(broker)
    bad = [
        b"not json",
        b"[]",
        b'{"adId":"AD1"}',
        b'{"adId":"x y","timestamp":1,"impressions":1}',
        None,
    ]
    for value in bad:
        producer.produce(topic.topic, key=b"k", value=value)
    send_event(producer, topic.topic, event("AD7", T0))
    assert producer.flush(20) == 0
    with RunningAggregator(broker, topic, store) as running:
        wait_until(
            lambda: running.counted("dead_letter") == len(bad) and running.counted("counted") == 1
        )
    assert list(store.totals()) == [("AD7", T0, 1, 0)]
    letters = read_all(broker, topic.dead_letters, len(bad))
    assert [m.value() for m in letters] == bad
    reasons = [dict(m.headers())[REASON_HEADER].decode() for m in letters]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "not a JSON object"
    assert reasons[2] == "missing fields: impressions, timestamp"
    assert reasons[3].startswith("adId: must match")
    assert reasons[4] == "empty record value"
    assert {dict(m.headers())["dlq.original.topic"] for m in letters} == {topic.topic.encode()}


def _end_offsets(broker: LocalBroker, topic: str) -> dict[int, int]:
    consumer = admin_consumer(broker)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        return {p: end for p, end in ends.items() if end > 0}
    finally:
        consumer.close()
