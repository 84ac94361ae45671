"""The hot path answers exactly as the FastAPI routes do, through both fronts (ASGI, and
the RSGI front `adstream serve` runs), and is counted in the metrics."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from adstream.events import EventType
from adstream.ingest.app import create_app
from adstream.ingest.config import ApiSettings
from adstream.ingest.rsgi import RsgiFront, front
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import local_kafka_settings
from tests.integration.ingest_support import plaintext_settings
from tests.support.rsgi import RsgiTransport

pytestmark = pytest.mark.integration

REQUESTS: list[tuple[str, dict[str, str | bytes]]] = [
    ("/ads/AD1/impression", {"Idempotency-Key": "hot-1"}),
    ("/ads/AD.2_x-y/click", {"Idempotency-Key": "hot-2"}),
    ("/ads/bad%20id/impression", {}),
    ("/ads/" + "x" * 65 + "/click", {}),
    ("/ads/AD1/impression", {"Idempotency-Key": "bad key with spaces"}),
    ("/ads/AD1/view", {}),
    (
        "/ads/AD%31/click",
        {"Idempotency-Key": "hot-4"},
    ),  # percent-encoded: the RSGI front leaves it to the routes
    ("/ads/AD1/impression?x=1", {"Idempotency-Key": "hot-3"}),
    (
        "/ads/AD1/impression",
        {"Idempotency-Key": "cl\u00e9".encode("latin-1")},
    ),  # not ASCII: 422 in both
]


@pytest.fixture(scope="module")
def clients(broker: LocalBroker) -> Iterator[tuple[TestClient, TestClient]]:
    settings = plaintext_settings(broker)
    hot = create_app(settings, ApiSettings(hot_path=True))
    plain = create_app(settings, ApiSettings(hot_path=False))
    with TestClient(hot) as hot_client, TestClient(plain) as plain_client:
        yield hot_client, plain_client


@pytest.fixture(scope="module")
def rsgi(broker: LocalBroker) -> Iterator[httpx.Client]:
    """The RSGI front, run in-process as a Granian worker runs it."""
    app = front(create_app(plaintext_settings(broker), ApiSettings(hot_path=True)))
    with httpx.Client(transport=RsgiTransport(app), base_url="http://testserver") as client:
        yield client


def _served(client: TestClient | httpx.Client) -> int | None:
    if isinstance(client, TestClient):
        count = client.app.state.hot_path  # type: ignore[attr-defined]
    else:
        transport = client._transport
        assert isinstance(transport, RsgiTransport)
        assert isinstance(transport.app, RsgiFront)
        count = transport.app.hot
    return None if count is None else int(count.served)


@pytest.mark.parametrize(("path", "headers"), REQUESTS)
def test_same_answer_with_and_without_the_hot_path(
    clients: tuple[TestClient, TestClient],
    rsgi: httpx.Client,
    path: str,
    headers: dict[str, str | bytes],
) -> None:
    hot_client, plain_client = clients
    served_before = {client: _served(client) for client in (hot_client, rsgi)}
    assert None not in served_before.values()
    assert _served(plain_client) is None  # switched off: no hot path in that app at all
    plain = plain_client.post(path, headers=headers)
    for client in (hot_client, rsgi):
        hot = client.post(path, headers=headers)
        assert (hot.status_code, hot.text) == (plain.status_code, plain.text)
        for name in ("content-type", "content-length", "x-event-id", "retry-after"):
            assert hot.headers.get(name) == plain.headers.get(name), name
        # Valid requests were answered by the hot path, invalid ones by the FastAPI routes.
        served = served_before[client]
        assert served is not None
        assert _served(client) == served + (1 if hot.status_code == 200 else 0)


def test_hot_requests_are_counted_under_the_route_template(
    clients: tuple[TestClient, TestClient], rsgi: httpx.Client
) -> None:
    for client in (clients[0], rsgi):
        assert client.post("/ads/AD-metrics/impression").status_code == 200
        metrics = client.get("/metrics").text
        assert (
            'adstream_http_requests_total{method="POST",route="/ads/{adId}/impression",'
            'status="200"}' in metrics
        )


@pytest.mark.parametrize("front_", ["asgi-hot", "asgi", "rsgi"])
def test_a_permanent_failure_is_500_without_retry_after(broker: LocalBroker, front_: str) -> None:
    """The aggregator's principal may not write ``ad-events``: retrying cannot help."""
    reader = local_kafka_settings(broker.layout, broker.ports, "adstream-aggregator")
    app = create_app(reader, ApiSettings(hot_path=front_ != "asgi", delivery_timeout_s=10))
    client: TestClient | httpx.Client = (
        httpx.Client(transport=RsgiTransport(front(app)), base_url="http://testserver")
        if front_ == "rsgi"
        else TestClient(app)
    )
    with client:
        response = client.post("/ads/AD1/impression")
        batch = client.post("/events", json=[{"adId": "AD1"}])
    for answer in (response, batch):
        assert answer.status_code == 500
        assert answer.json()["error"] == "delivery_failed"
        assert "retry-after" not in answer.headers


def test_published_events_leave_no_garbage_for_the_cyclic_collector(broker: LocalBroker) -> None:
    """Every object a hot request or a batch creates is freed by reference counting.

    A delivery ticket that referenced its own callback left seven objects per request for
    the cyclic collector; at 10k requests/s its young collections freed ~40k objects each
    and stopped the worker's event loop for 20-60 ms, which was the single-event p99.
    """
    app = create_app(plaintext_settings(broker), ApiSettings(hot_path=True))

    async def run() -> list[object]:
        async with app.router.lifespan_context(app):
            hot = app.hot  # type: ignore[attr-defined]
            assert hot is not None
            service = hot.service
            for i in range(20):  # warm: connections, caches, first-use allocations
                assert (await hot.answer(f"AD{i}", "impression", None, None, ""))[0] == 200
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                answers = await asyncio.gather(
                    *(hot.answer(f"AD{i}", "click", None, None, "") for i in range(300))
                )
                assert {answer[0] for answer in answers if answer is not None} == {200}
                batch = [
                    service.new_event(f"AD{i}", EventType.IMPRESSION, None) for i in range(300)
                ]
                assert await service.record_batch(batch) == 300
                gc.collect()
                return list(gc.garbage)
            finally:
                gc.set_debug(0)
                gc.garbage.clear()

    garbage = asyncio.run(run())
    kinds = Counter(type(obj).__name__ for obj in garbage)
    assert len(garbage) < 30, f"{len(garbage)} objects left for the collector: {kinds}"
