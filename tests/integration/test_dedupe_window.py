"""No client clock decides how long an event id is remembered: through the API and the aggregator.

Before the fix, one event stamped a year ahead moved the de-duplication horizon a year
forward, and the next retry of an already counted event was counted again; an event
older than 24 hours was forgotten at the next prune even if it had just arrived.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError
from fastapi.testclient import TestClient

from adstream.aggregate.dead_letters import REASON_HEADER
from adstream.aggregate.store import SqlCountStore
from adstream.events import epoch_ms
from adstream.events.wire import headers, key, value
from adstream.ingest.app import create_app
from adstream.ingest.config import ApiSettings
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import local_kafka_settings
from tests.integration.aggregate_helpers import (
    PrivateTopic,
    RunningAggregator,
    admin_producer,
    event,
    send_event,
    wait_until,
)
from tests.integration.kafka_helpers import read_all

pytestmark = pytest.mark.integration

DAY_MS = 24 * 3600 * 1000
YEAR_MS = 365 * DAY_MS


@pytest.fixture
def store(store: SqlCountStore) -> SqlCountStore:
    store.prune_every_s = 0  # prune on every batch: the attack's best case
    return store


@pytest.fixture
def api(broker: LocalBroker, topic: PrivateTopic) -> Iterator[TestClient]:
    settings = local_kafka_settings(broker.layout, broker.ports, "admin")
    with TestClient(create_app(settings, ApiSettings(topic=topic.topic))) as client:
        yield client


def _impressions(store: SqlCountStore, ad_id: str) -> int:
    return sum(i for ad, _, i, _ in store.totals() if ad == ad_id)


def test_a_future_client_clock_cannot_reopen_duplicates(
    broker: LocalBroker, topic: PrivateTopic, store: SqlCountStore, api: TestClient
) -> None:
    now = epoch_ms()
    assert api.post("/ads/AD1/impression", headers={"Idempotency-Key": "k-1"}).status_code == 200
    # The API refuses an event stamped a year ahead ...
    ahead = api.post("/events", json=[{"adId": "AD2", "timestamp": now + YEAR_MS}])
    assert ahead.status_code == 422
    assert "in the future" in ahead.json()["detail"][0]["errors"]["timestamp"]
    # ... and so does the aggregator when a producer writes one to Kafka directly.
    producer = admin_producer(broker)
    future_event = event("AD2", now + YEAR_MS)
    send_event(producer, topic.topic, future_event)
    # A producer cannot stamp the Kafka record itself a year ahead: the broker refuses it
    # (log.message.timestamp.after.max.ms); the store also caps the time by its own clock.
    skewed = event("AD3", now + YEAR_MS)
    refused: list[object] = []
    producer.produce(
        topic.topic,
        key=key(skewed),
        value=value(skewed),
        headers=headers(skewed),
        timestamp=now + YEAR_MS,
        on_delivery=lambda error, _: refused.append(error),
    )
    assert producer.flush(20) == 0
    assert [getattr(e, "code", lambda: None)() for e in refused] == [KafkaError.INVALID_TIMESTAMP]
    with RunningAggregator(broker, topic, store) as running:
        wait_until(
            lambda: running.counted("counted") == 1 and running.counted("dead_letter") == 1,
            state=lambda: {o: running.counted(o) for o in ("counted", "dead_letter", "duplicate")},
        )
        retry = api.post("/ads/AD1/impression", headers={"Idempotency-Key": "k-1"})
        assert retry.status_code == 200
        wait_until(lambda: running.counted("duplicate") == 1)
    assert _impressions(store, "AD1") == 1
    assert _impressions(store, "AD2") == 0
    (letter,) = read_all(broker, topic.dead_letters, 1)
    assert "in the future" in dict(letter.headers())[REASON_HEADER].decode()


def test_a_late_event_stays_deduplicated_after_a_prune(
    broker: LocalBroker, topic: PrivateTopic, store: SqlCountStore, api: TestClient
) -> None:
    three_days_ago = epoch_ms() - 3 * DAY_MS
    late = [{"adId": "LATE", "timestamp": three_days_ago}]
    assert api.post("/events", json=late, headers={"Idempotency-Key": "k-late"}).status_code == 200
    with RunningAggregator(broker, topic, store) as running:
        wait_until(lambda: running.counted("counted") == 1)
        # A current event makes the next batch prune; the late id was received just now.
        assert api.post("/ads/NOW/impression").status_code == 200
        wait_until(lambda: running.counted("counted") == 2)
        again = api.post("/events", json=late, headers={"Idempotency-Key": "k-late"})
        assert again.status_code == 200
        wait_until(lambda: running.counted("duplicate") == 1)
    assert _impressions(store, "LATE") == 1
