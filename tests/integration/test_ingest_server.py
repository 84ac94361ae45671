"""`adstream serve` with two Granian workers over mutual TLS (the MSK-like default path):
metrics summed across workers, and schemathesis finds no 5xx while the broker is up."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from adstream.local.broker import LocalBroker
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

SERVE = [sys.executable, "-m", "adstream", "serve"]


@pytest.fixture(scope="module")
def server(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    config = broker.layout.client_properties("tls")
    db = f"sqlite:///{tmp_path_factory.mktemp('api') / 'counts.db'}"
    process = subprocess.Popen(
        [*SERVE, "--kafka-config", str(config), "--port", str(port), "--workers", "2", "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready in 60 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def _published(metrics: str) -> float:
    match = re.search(r"^adstream_events_published_total (\S+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_the_events_of_every_worker(server: str) -> None:
    before = _published(httpx.get(f"{server}/metrics").text)
    for i in range(20):
        # A new connection each time, so both workers get requests.
        assert httpx.post(f"{server}/ads/W{i}/impression").status_code == 200
    # Each worker writes what it counted at least once a second (metrics.FLUSH_S).
    deadline = time.monotonic() + 10
    while _published(httpx.get(f"{server}/metrics").text) != before + 20:
        assert time.monotonic() < deadline, "the workers' counts never added up"
        time.sleep(0.2)
    scrapes = {_published(httpx.get(f"{server}/metrics").text) for _ in range(6)}
    assert scrapes == {before + 20}


def test_stats_routes_are_served_with_a_count_database(server: str) -> None:
    assert httpx.get(f"{server}/stats/totals").json() == {"impressions": 0, "clicks": 0, "ads": 0}
    assert httpx.get(f"{server}/ads/top", params={"minutes": 5}).json()["ads"] == []
    assert httpx.get(f"{server}/ads/AD1/stats").json()["totals"] == {"impressions": 0, "clicks": 0}
    assert "top-ads" in httpx.get(f"{server}/dashboard").text


def test_bad_kafka_config_exits_2_before_serving(tmp_path: Path) -> None:
    bad = tmp_path / "client.properties"
    bad.write_text("security.protocol=SSL\n")
    done = subprocess.run(
        [*SERVE, "--kafka-config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid Kafka settings" in done.stderr


def test_no_server_errors_while_the_broker_is_up(server: str) -> None:
    """Every documented operation, with generated valid and invalid input, never gets a 5xx.

    Driven through Hypothesis directly: schemathesis' pytest plugin does not load with
    this pytest version.
    """
    api = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        check()
