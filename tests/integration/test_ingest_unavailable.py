"""With the broker stopped the API answers 503 + Retry-After, never 2xx.

Runs its own broker (not the session one) because it stops it. Each test states the
broker state it needs through a fixture, so the tests pass alone and in any order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adstream.events import AdEvent, EventType, uuid7
from adstream.ingest.app import create_app
from adstream.ingest.config import ApiSettings
from adstream.ingest.errors import DeliveryTimeoutError, QueueFullError
from adstream.ingest.publisher import AdEventPublisher
from adstream.kafka.factory import make_producer
from adstream.local.broker import LocalBroker
from tests.integration.conftest import ExtraBroker
from tests.integration.ingest_support import high_watermarks, plaintext_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stoppable(extra_broker: ExtraBroker) -> Iterator[LocalBroker]:
    with extra_broker("ingest-down") as started:
        yield started


@pytest.fixture
def running(stoppable: LocalBroker) -> LocalBroker:
    stoppable.up()  # idempotent
    return stoppable


@pytest.fixture
def stopped(stoppable: LocalBroker) -> LocalBroker:
    stoppable.down()
    assert stoppable.running_pid() is None
    return stoppable


def _event() -> AdEvent:
    return AdEvent.create(event_id=uuid7(), ad_id="AD1", type=EventType.CLICK, timestamp=1)


def test_503_with_retry_after_once_the_broker_is_down_and_none_reach_kafka_later(
    running: LocalBroker,
) -> None:
    app = create_app(
        plaintext_settings(running), ApiSettings(delivery_timeout_s=2, retry_after_s=3)
    )
    with TestClient(app) as client:
        ok = client.post("/ads/UP1/impression")
        assert ok.status_code == 200
        assert client.get("/readyz").status_code == 200
        acked_before_stop = sum(high_watermarks(running).values())

        running.down()
        responses = [
            client.post("/ads/DOWN1/impression"),
            client.post("/ads/DOWN2/click"),
            client.post("/events", json=[{"adId": "DOWN3"}, {"adId": "DOWN4"}]),
            client.get("/pixel.gif", params={"adId": "DOWN5"}),
        ]
        for response in responses:
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "3"
            assert response.json()["error"] in {"delivery_timeout", "broker_unavailable"}
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready"
        failures = client.get("/metrics").text
        assert 'adstream_delivery_failures_total{reason="delivery_timeout"}' in failures
    # The app (and its producer) is closed: the broker's return must not bring any
    # event that was answered 503 into the log.
    running.up()
    assert sum(high_watermarks(running).values()) == acked_before_stop


def test_full_local_queue_is_backpressure_not_buffering(stopped: LocalBroker) -> None:
    async def scenario() -> None:
        producer = make_producer(
            plaintext_settings(stopped),
            {"queue.buffering.max.messages": 2, "message.timeout.ms": 1500, "linger.ms": 1000},
        )
        publisher = AdEventPublisher(producer, "ad-events")
        publisher.start()
        filling = asyncio.ensure_future(publisher.publish_many([_event(), _event()]))
        await asyncio.sleep(0)  # both are in the queue now
        with pytest.raises(QueueFullError):
            await publisher.publish(_event())
        with pytest.raises(DeliveryTimeoutError):
            await filling
        # A batch that does not fit: the part that was queued settles first, then 503.
        with pytest.raises(QueueFullError):
            await publisher.publish_many([_event(), _event(), _event()])
        assert publisher.queue_depth == 0
        assert await publisher.close(5) == 0

    asyncio.run(scenario())


def test_timeout_raises_typed_error_and_close_flushes(stopped: LocalBroker) -> None:
    async def scenario() -> None:
        producer = make_producer(plaintext_settings(stopped), {"message.timeout.ms": 1000})
        publisher = AdEventPublisher(producer, "ad-events")
        publisher.start()
        with pytest.raises(DeliveryTimeoutError):
            await publisher.publish(_event())
        await publisher.close(5)

    asyncio.run(scenario())
