"""A producer in a fatal state: waiting requests get 503, new ones fail fast, health fails.

The fatal error is librdkafka's own (its test hook, see `tests.librdkafka_faults`), on a
producer whose broker is unreachable, so nothing else can make the app unhealthy.
Before the fix, `poll()` raised the fatal error in the publisher's poll thread, the
thread died, and every request waiting for an ack hung forever while `/healthz` said ok.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError
from fastapi.testclient import TestClient

from adstream.events import AdEvent, EventType, uuid7
from adstream.ingest.app import create_app
from adstream.ingest.config import ApiSettings
from adstream.ingest.errors import ProducerFatalError
from adstream.ingest.publisher import AdEventPublisher, classify
from adstream.kafka.factory import make_producer
from adstream.kafka.settings import KafkaSettings
from tests.librdkafka_faults import inject_fatal_error

UNREACHABLE = KafkaSettings(bootstrap_servers=("127.0.0.1:1",))


@pytest.fixture(params=[True, False], ids=["hot-path", "fastapi-routes"])
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    fatal_calls: list[str] = []
    app = create_app(
        UNREACHABLE,
        ApiSettings(hot_path=request.param, retry_after_s=2),
        on_fatal=lambda: fatal_calls.append("called"),
    )
    app.state.fatal_calls = fatal_calls
    with TestClient(app) as running:
        yield running


def _wait_for_fatal(publisher: AdEventPublisher) -> None:
    for _ in range(100):
        if publisher.fatal_error is not None:
            return
        asyncio.run(asyncio.sleep(0.02))
    raise AssertionError("the fatal error was not noticed")


def test_fatal_errors_are_their_own_kind() -> None:
    fatal = KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "sequence gap", fatal=True)
    error = classify(fatal)
    assert type(error) is ProducerFatalError
    assert (error.status, error.retryable) == (503, True)
    assert type(classify(KafkaError(KafkaError._TRANSPORT))) is not ProducerFatalError


def test_after_a_fatal_error_publishes_fail_fast_and_health_fails(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "detail": None}
    publisher = client.app.state.publisher  # type: ignore[attr-defined]
    inject_fatal_error(publisher._producer, reason="sequence gap")
    _wait_for_fatal(publisher)
    for answer in (
        client.post("/ads/AD1/impression"),
        client.post("/events", json=[{"adId": "AD1"}]),
    ):
        assert answer.status_code == 503
        assert answer.json()["error"] == "producer_fatal"
        assert answer.headers["retry-after"] == "2"
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "fatal"
    assert "sequence gap" in health.json()["detail"]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "fatally" in ready.json()["detail"]
    assert client.app.state.fatal_calls == ["called"]  # type: ignore[attr-defined]
    failures = client.get("/metrics").text
    assert 'adstream_delivery_failures_total{reason="producer_fatal"} 2.0' in failures


def test_events_waiting_for_an_ack_fail_when_the_producer_dies() -> None:
    async def scenario() -> None:
        producer = make_producer(UNREACHABLE, {"message.timeout.ms": 60_000})
        publisher = AdEventPublisher(producer, "ad-events")
        publisher.start()
        event = AdEvent.create(event_id=uuid7(), ad_id="AD1", type=EventType.CLICK, timestamp=1)
        waiting = asyncio.ensure_future(publisher.publish(event))
        await asyncio.sleep(0)
        inject_fatal_error(producer)
        # Without the fix this waits for the whole minute of message.timeout.ms, or forever.
        with pytest.raises(ProducerFatalError):
            await asyncio.wait_for(waiting, 10)
        assert publisher.queue_depth == 0
        await publisher.close(1)

    asyncio.run(scenario())


def test_a_transient_client_error_is_not_fatal(client: TestClient) -> None:
    client.app.state.publisher.on_client_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))  # type: ignore[attr-defined]
    assert client.get("/healthz").status_code == 200
