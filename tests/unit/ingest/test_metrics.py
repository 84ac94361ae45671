"""Request metrics are labelled by route template, so ad ids do not explode the series."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from adstream.api import create_api
from adstream.ingest.config import MULTIPROC_ENV, ApiSettings
from adstream.ingest.metrics import _LATENCY_BUCKETS, Metrics, method_label
from adstream.kafka.settings import KafkaSettings


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


def test_labels_stay_bounded_whatever_the_client_sends(tmp_path: Path) -> None:
    """The full API (ingest + stats): an unknown method is ``other`` and an unmatched path
    is ``<unmatched>``, so a client cannot create new series."""
    api = ApiSettings(db_url=f"sqlite:///{tmp_path / 'c.db'}")
    app = create_api(KafkaSettings(bootstrap_servers=("127.0.0.1:1",)), api)
    client = TestClient(app, raise_server_exceptions=False)  # no lifespan: nothing publishes
    path = f"/{uuid.uuid4().hex}/x"
    assert client.request("FOOBAR123", path).status_code == 404
    assert client.request("FOOBAR123", "/stats/totals").status_code == 405
    assert client.request("PATCH", "/ads/AD1/stats").status_code == 405
    assert client.get("/stats/totals").status_code == 200
    text = client.get("/metrics").text
    assert "FOOBAR123" not in text
    assert path.split("/")[1] not in text
    requests = 'adstream_http_requests_total{method="%s",route="%s",status="%s"} 1.0'
    assert requests % ("other", "<unmatched>", "404") in text
    assert requests % ("other", "/stats/totals", "405") in text
    assert requests % ("PATCH", "/ads/{adId}/stats", "405") in text
    assert requests % ("GET", "/stats/totals", "200") in text


@pytest.mark.parametrize(
    ("method", "label"),
    [
        ("GET", "GET"),
        ("OPTIONS", "OPTIONS"),
        ("get", "other"),
        ("FOOBAR123", "other"),
        ("", "other"),
    ],
)
def test_method_label(method: str, label: str) -> None:
    assert method_label(method) == label


def _samples(text: str, name: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith(f"{name}_created")
    ]


def test_observations_counted_in_memory_expose_as_observing_each_one() -> None:
    """The hot path counts in memory and writes on flush: the exposition must not change."""
    values = [0.0004, 0.001, 0.0011, 0.0025, 0.003, 0.05, 0.7, 3.0, 10.0, 42.0]
    direct = CollectorRegistry()
    histogram = Histogram(
        "adstream_produce_ack_seconds", "h", buckets=_LATENCY_BUCKETS, registry=direct
    )
    for value in values:
        histogram.observe(value)
    metrics = Metrics()
    for value in values[:4]:
        metrics.completed(value)
    metrics.flush()  # two flushes add up
    for value in values[4:]:
        metrics.completed(value)
    name = "adstream_produce_ack_seconds"
    counted = _samples(metrics.render()[0].decode(), name)
    observed = _samples(generate_latest(direct).decode(), name)
    assert [line for line in counted if "_sum" not in line] == [
        line for line in observed if "_sum" not in line
    ]
    sums = [
        float(line.split()[-1]) for lines in (counted, observed) for line in lines if "_sum" in line
    ]
    assert sums[0] == pytest.approx(sums[1])  # the same values, added in another order


def test_request_counts_are_written_on_flush_and_before_each_render() -> None:
    metrics = Metrics()
    metrics.observe_request("POST", "/ads/{adId}/impression", 200, 0.002)
    metrics.observe_request("POST", "/ads/{adId}/impression", 200, 0.004)
    series = (
        'adstream_http_requests_total{method="POST",route="/ads/{adId}/impression",status="200"}'
    )
    assert series not in generate_latest(metrics.registry).decode()  # not written yet
    assert f"{series} 2.0" in metrics.render()[0].decode()
    assert f"{series} 2.0" in metrics.render()[0].decode()  # nothing counted twice


_WORKER = """
import sys
from adstream.ingest.metrics import Metrics
metrics = Metrics()
metrics.queue_depth(int(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()
"""


def test_queue_depth_is_the_fullest_live_workers_not_the_sum(tmp_path: Path) -> None:
    """Each worker refuses when its own queue is full, so the alert's 80% of one queue's
    capacity must compare with the fullest worker, not with the workers' sum."""
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(depth)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for depth in (60_000, 50_000)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline() == "ready\n"
        scrape = subprocess.run(
            [
                sys.executable,
                "-c",
                "from adstream.ingest.metrics import Metrics;print(Metrics().render()[0].decode())",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        for worker in workers:
            worker.communicate("")
    assert "adstream_producer_queue_depth 60000.0" in scrape
