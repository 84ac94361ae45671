"""The HTTP API against the real broker: what a 2xx promises is in Kafka, bad input is not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from adstream.events import wire
from adstream.ingest.app import create_app
from adstream.ingest.config import ApiSettings
from adstream.local.broker import LocalBroker
from tests.integration.ingest_support import (
    high_watermarks,
    java_partitions,
    plaintext_settings,
    read_from,
    run_java_reader,
)
from tests.integration.kafka_helpers import AD_EVENTS_PARTITIONS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(broker: LocalBroker) -> Iterator[TestClient]:
    app = create_app(plaintext_settings(broker), ApiSettings(delivery_timeout_s=10))
    with TestClient(app) as running:
        yield running


def _headers(message: object) -> dict[str, bytes]:
    return dict(message.headers() or [])  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["impression", "click"])
def test_event_is_in_kafka_with_key_fields_headers_and_javas_partition(
    client: TestClient, broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory, kind: str
) -> None:
    ad_id = f"AD-{uuid.uuid4().hex[:8]}"
    before = high_watermarks(broker)

    response = client.post(f"/ads/{ad_id}/{kind}")

    assert response.status_code == 200
    assert response.text == f"{kind.capitalize()} recorded for {ad_id}"
    event_id = response.headers["X-Event-Id"]
    expected = java_partitions(broker, tmp_path_factory.getbasetemp(), AD_EVENTS_PARTITIONS, ad_id)
    [message] = read_from(broker, {expected[ad_id]: before[expected[ad_id]]}, 1)
    assert message.key() == ad_id.encode()
    body = orjson.loads(message.value())
    assert body["eventId"] == event_id
    assert uuid.UUID(event_id).version == 7
    assert body["adId"] == ad_id
    assert body["type"] == kind
    assert body["impressions"] == 1
    assert isinstance(body["timestamp"], int)
    headers = _headers(message)
    assert headers[wire.HEADER_EVENT_TYPE] == kind.encode()
    assert headers[wire.HEADER_SCHEMA_VERSION] == wire.SCHEMA_VERSION.encode()


def test_many_keys_land_where_java_puts_them(
    client: TestClient, broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    keys = [f"k{i}.{uuid.uuid4().hex[:4]}" for i in range(12)]
    before = high_watermarks(broker)
    events = [{"adId": key} for key in keys]
    assert client.post("/events", json=events).json() == {"accepted": len(keys)}
    expected = java_partitions(broker, tmp_path_factory.getbasetemp(), AD_EVENTS_PARTITIONS, *keys)
    messages = read_from(broker, before, len(keys))
    placed = {m.key().decode(): m.partition() for m in messages}
    assert placed == expected


def test_idempotency_key_gives_the_same_event_id(client: TestClient) -> None:
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    first = client.post("/ads/AD1/impression", headers=key)
    second = client.post("/ads/AD1/impression", headers=key)
    other = client.post("/ads/AD1/impression")
    assert first.status_code == second.status_code == 200
    assert first.headers["X-Event-Id"] == second.headers["X-Event-Id"]
    assert other.headers["X-Event-Id"] != first.headers["X-Event-Id"]


@pytest.mark.parametrize("ad_id", ["a" * 65, "bad%20id", "AD%24", "%C3%A9t%C3%A9"])
def test_bad_ad_id_is_422_and_not_published(
    client: TestClient, broker: LocalBroker, ad_id: str
) -> None:
    before = high_watermarks(broker)
    response = client.post(f"/ads/{ad_id}/impression")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert "adId" in response.text
    assert high_watermarks(broker) == before


def test_bad_idempotency_key_is_422(client: TestClient) -> None:
    response = client.post("/ads/AD1/click", headers={"Idempotency-Key": "has space"})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["detail"]


def test_batch_with_bad_entries_lists_them_and_publishes_nothing(
    client: TestClient, broker: LocalBroker
) -> None:
    before = high_watermarks(broker)
    events = [
        {"adId": "ok1"},
        {"adId": "bad id"},
        {"adId": "ok2", "type": "view"},
        {"adId": "ok3", "impressions": 0, "timestamp": -1},
        "not an object",
    ]
    response = client.post("/events", json=events)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_events"
    assert [item["index"] for item in body["detail"]] == [1, 2, 3, 4]
    assert set(body["detail"][2]["errors"]) == {"impressions", "timestamp"}
    assert high_watermarks(broker) == before


def test_ndjson_batch_is_accepted_after_all_acks(client: TestClient, broker: LocalBroker) -> None:
    before = high_watermarks(broker)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    lines = [
        orjson.dumps({"adId": f"nd{i}", "type": "click", "eventId": e}) for i, e in enumerate(ids)
    ]
    response = client.post(
        "/events",
        content=b"\n".join(lines) + b"\n",
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200
    assert response.json() == {"accepted": 5}
    after = high_watermarks(broker)
    assert sum(after.values()) - sum(before.values()) == 5
    found = {orjson.loads(m.value())["eventId"] for m in read_from(broker, before, 5)}
    assert found == set(ids)


def test_oversized_body_is_413(client: TestClient) -> None:
    big = b"[" + b",".join([b'{"adId":"' + b"x" * 60 + b'"}'] * 20_000) + b"]"
    assert len(big) > 1024 * 1024
    response = client.post("/events", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_more_than_1000_events_is_413(client: TestClient) -> None:
    response = client.post("/events", json=[{"adId": "a"}] * 1001)
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
def test_wrong_media_type_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/events", content=b'[{"adId":"a"}]', headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/events", content=b"[{", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_pixel_is_a_gif_that_is_never_cached(client: TestClient, broker: LocalBroker) -> None:
    before = high_watermarks(broker)
    response = client.get("/pixel.gif", params={"adId": "PIX1"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    assert len(response.content) == 43
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["pragma"] == "no-cache"
    assert sum(high_watermarks(broker).values()) == sum(before.values()) + 1


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "detail": None}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert "6 partitions" in ready.json()["detail"]
    client.post("/ads/MET1/impression")
    text = client.get("/metrics").text
    assert (
        'adstream_http_requests_total{method="POST",route="/ads/{adId}/impression",status="200"}'
        in text
    )
    assert "adstream_produce_ack_seconds_count" in text
    assert "adstream_producer_queue_depth" in text


def test_openapi_documents_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/ads/{adId}/impression", "/ads/{adId}/click", "/events", "/pixel.gif"} <= set(paths)
    assert "application/x-ndjson" in paths["/events"]["post"]["requestBody"]["content"]


def test_a_java_consumer_reads_the_event_as_the_seeds_ad_event(
    client: TestClient, broker: LocalBroker, tmp_path: Path
) -> None:
    ad_id = f"JAVA-{uuid.uuid4().hex[:6]}"
    partition = java_partitions(broker, tmp_path, AD_EVENTS_PARTITIONS, ad_id)[ad_id]
    offset = high_watermarks(broker)[partition]
    assert client.post(f"/ads/{ad_id}/click").status_code == 200

    stdout = run_java_reader(broker, tmp_path, partition, offset)

    assert f"key={ad_id} adId={ad_id} timestamp=" in stdout
    assert "impressions=1" in stdout
    assert "header ad-event-type=click" in stdout
    assert "header ad-event-schema-version=1" in stdout
