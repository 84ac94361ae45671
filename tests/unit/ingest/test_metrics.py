"""Request metrics are labelled by route template, so ad ids do not explode the series."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from adstream.ingest.metrics import Metrics


def _app(metrics: Metrics) -> FastAPI:
    app = FastAPI()

    @app.post("/ads/{adId}/impression")
    async def impression(adId: str) -> str:  # noqa: N803
        return adId

    app.add_middleware(lambda inner: metrics.middleware(inner))  # type: ignore[arg-type]
    return app


def test_requests_are_counted_by_template_and_status() -> None:
    metrics = Metrics()
    client = TestClient(_app(metrics))
    for ad in ("A1", "A2", "A3"):
        assert client.post(f"/ads/{ad}/impression").status_code == 200
    assert client.get("/nowhere").status_code == 404
    text = metrics.render()[0].decode()
    series = 'method="POST",route="/ads/{adId}/impression",status="200"'
    assert f"adstream_http_requests_total{{{series}}} 3.0" in text
    assert 'route="<unmatched>",status="404"} 1.0' in text
    assert "A1" not in text


def test_publisher_observations_are_exposed() -> None:
    metrics = Metrics()
    metrics.acked(5)
    metrics.completed(0.003)
    metrics.failed("delivery_timeout")
    metrics.queue_depth(7)
    text = metrics.render()[0].decode()
    assert "adstream_events_published_total 5.0" in text
    assert "adstream_produce_ack_seconds_count 1.0" in text
    assert 'adstream_delivery_failures_total{reason="delivery_timeout"} 1.0' in text
    assert "adstream_producer_queue_depth 7.0" in text
