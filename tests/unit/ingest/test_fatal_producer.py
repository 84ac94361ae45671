"""A producer in a fatal state: every publish is 503, and both health endpoints say so.

librdkafka reports a fatal error through `error_cb` (the idempotent producer's
guarantees would break if it went on); the test delivers that callback as librdkafka
would, on an app whose broker is unreachable, so nothing else can make it unhealthy.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError
from fastapi.testclient import TestClient

from adstream.ingest.app import create_app
from adstream.ingest.config import ApiSettings
from adstream.ingest.errors import ProducerFatalError
from adstream.ingest.publisher import classify
from adstream.kafka.settings import KafkaSettings

FATAL = KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "sequence gap", fatal=True)


@pytest.fixture(params=[True, False], ids=["hot-path", "fastapi-routes"])
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    settings = KafkaSettings(bootstrap_servers=("127.0.0.1:1",))
    app = create_app(settings, ApiSettings(hot_path=request.param, retry_after_s=2))
    with TestClient(app) as running:
        yield running


def test_fatal_errors_are_their_own_kind() -> None:
    error = classify(FATAL)
    assert type(error) is ProducerFatalError
    assert (error.status, error.retryable) == (503, True)
    transient = classify(KafkaError(KafkaError._TRANSPORT))
    assert type(transient) is not ProducerFatalError


def test_after_a_fatal_error_publishes_fail_fast_and_health_fails(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "detail": None}
    client.app.state.publisher.on_client_error(FATAL)  # type: ignore[attr-defined]
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
    failures = client.get("/metrics").text
    assert 'adstream_delivery_failures_total{reason="producer_fatal"} 2.0' in failures


def test_a_transient_client_error_is_not_fatal(client: TestClient) -> None:
    client.app.state.publisher.on_client_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))  # type: ignore[attr-defined]
    assert client.get("/healthz").status_code == 200
