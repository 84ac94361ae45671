"""The aggregator against the real broker: counts, duplicates, seed-format events, dead letters."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from adstream.aggregate.consumer import Aggregator
from adstream.aggregate.dead_letters import REASON_HEADER, DeadLetters
from adstream.aggregate.metrics import AggregatorMetrics
from adstream.aggregate.model import MINUTE_MS
from adstream.aggregate.store import SqlCountStore
from adstream.aggregate.stores import open_store
from adstream.kafka.factory import make_consumer, make_producer
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import librdkafka_config, local_kafka_settings
from adstream.local.layout import Listener
from tests.integration.aggregate_helpers import (
    AGGREGATOR,
    PrivateTopic,
    admin_producer,
    event,
    private_topic,
    send_event,
)

pytestmark = pytest.mark.integration

T0 = 1_790_000_040_000


@pytest.fixture
def topic(broker: LocalBroker) -> PrivateTopic:
    return private_topic(broker)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlCountStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'counts.db'}")
    yield opened
    opened.close()


class Running:
    """An in-process aggregator on a thread, as the ``aggregate`` command wires it."""

    def __init__(self, broker: LocalBroker, topic: PrivateTopic, store: SqlCountStore) -> None:
        settings = local_kafka_settings(broker.layout, broker.ports, AGGREGATOR)
        self.metrics = AggregatorMetrics()
        consumer = make_consumer(settings, topic.group, {"auto.offset.reset": "earliest"})
        letters = DeadLetters(make_producer(settings), topic.dead_letters)
        self.aggregator = Aggregator(consumer, store, letters, self.metrics, topic.config())
        self.thread = threading.Thread(target=self.aggregator.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.aggregator.stop()
        self.thread.join(30)

    def counted(self, outcome: str) -> float:
        return self.metrics.events.labels(outcome)._value.get()


def _wait(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


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
    with Running(broker, topic, store) as running:
        _wait(lambda: running.counted("counted") + running.counted("duplicate") == 6)
    assert list(store.totals()) == [
        ("AD1", T0 - MINUTE_MS, 1, 0),
        ("AD1", T0, 5, 1),
        ("AD2", T0 + MINUTE_MS, 1, 0),
    ]
    assert running.counted("duplicate") == 1
    assert store.load_offsets(topic.topic) == _end_offsets(broker, topic.topic)


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
    with Running(broker, topic, store) as running:
        _wait(lambda: running.counted("counted") == 2)
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
    with Running(broker, topic, store) as running:
        _wait(
            lambda: running.counted("dead_letter") == len(bad) and running.counted("counted") == 1
        )
    assert list(store.totals()) == [("AD7", T0, 1, 0)]
    letters = _read_all(broker, topic.dead_letters, len(bad))
    assert [m.value() for m in letters] == bad
    reasons = [dict(m.headers())[REASON_HEADER].decode() for m in letters]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "not a JSON object"
    assert reasons[2] == "missing fields: impressions, timestamp"
    assert reasons[3].startswith("adId must match")
    assert reasons[4] == "empty record value"
    assert {dict(m.headers())["dlq.original.topic"] for m in letters} == {topic.topic.encode()}


def _end_offsets(broker: LocalBroker, topic: str) -> dict[int, int]:
    consumer = _admin_consumer(broker)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        return {p: end for p, end in ends.items() if end > 0}
    finally:
        consumer.close()


def _admin_consumer(broker: LocalBroker) -> Consumer:
    config = librdkafka_config(broker.layout, broker.ports, Listener.SSL, principal="admin")
    return Consumer({**config, "group.id": "adstream-test-reader", "enable.auto.commit": False})


def _read_all(broker: LocalBroker, topic: str, count: int) -> list:  # type: ignore[type-arg]
    consumer = _admin_consumer(broker)
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + 20
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None and message.error() is None:
                got.append(message)
        return got
    finally:
        consumer.close()
