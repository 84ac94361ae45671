"""The hot path answers exactly as the FastAPI routes do, and is counted in the metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adstream.ingest.app import create_app
from adstream.ingest.config import ApiSettings
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import local_kafka_settings
from tests.integration.ingest_support import plaintext_settings

pytestmark = pytest.mark.integration

REQUESTS = [
    ("/ads/AD1/impression", {"Idempotency-Key": "hot-1"}),
    ("/ads/AD.2_x-y/click", {"Idempotency-Key": "hot-2"}),
    ("/ads/bad%20id/impression", {}),
    ("/ads/" + "x" * 65 + "/click", {}),
    ("/ads/AD1/impression", {"Idempotency-Key": "bad key with spaces"}),
    ("/ads/AD1/view", {}),
]


@pytest.fixture(scope="module")
def clients(broker: LocalBroker) -> Iterator[tuple[TestClient, TestClient]]:
    settings = plaintext_settings(broker)
    hot = create_app(settings, ApiSettings(hot_path=True))
    plain = create_app(settings, ApiSettings(hot_path=False))
    with TestClient(hot) as hot_client, TestClient(plain) as plain_client:
        yield hot_client, plain_client


def _served(client: TestClient) -> int | None:
    count = client.app.state.hot_path  # type: ignore[attr-defined]
    return None if count is None else int(count.served)


@pytest.mark.parametrize(("path", "headers"), REQUESTS)
def test_same_answer_with_and_without_the_hot_path(
    clients: tuple[TestClient, TestClient], path: str, headers: dict[str, str]
) -> None:
    hot_client, plain_client = clients
    served_before = _served(hot_client)
    assert served_before is not None
    assert _served(plain_client) is None  # switched off: no hot path in that app at all
    hot, plain = (client.post(path, headers=headers) for client in clients)
    assert (hot.status_code, hot.text) == (plain.status_code, plain.text)
    for name in ("content-type", "content-length", "x-event-id", "retry-after"):
        assert hot.headers.get(name) == plain.headers.get(name), name
    # Valid requests were answered by the hot path, invalid ones by the FastAPI routes.
    assert _served(hot_client) == served_before + (1 if hot.status_code == 200 else 0)


def test_hot_requests_are_counted_under_the_route_template(
    clients: tuple[TestClient, TestClient],
) -> None:
    hot, _ = clients
    assert hot.post("/ads/AD-metrics/impression").status_code == 200
    metrics = hot.get("/metrics").text
    assert (
        'adstream_http_requests_total{method="POST",route="/ads/{adId}/impression",status="200"}'
        in metrics
    )


@pytest.mark.parametrize("hot_path", [True, False])
def test_a_permanent_failure_is_500_without_retry_after(
    broker: LocalBroker, hot_path: bool
) -> None:
    """The aggregator's principal may not write ``ad-events``: retrying cannot help."""
    reader = local_kafka_settings(broker.layout, broker.ports, "adstream-aggregator")
    app = create_app(reader, ApiSettings(hot_path=hot_path, delivery_timeout_s=10))
    with TestClient(app) as client:
        response = client.post("/ads/AD1/impression")
        batch = client.post("/events", json=[{"adId": "AD1"}])
    for answer in (response, batch):
        assert answer.status_code == 500
        assert answer.json()["error"] == "delivery_failed"
        assert "retry-after" not in answer.headers
