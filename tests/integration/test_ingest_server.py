"""`adstream serve` with two Granian workers over mutual TLS (the MSK-like default path):
metrics summed across workers, and schemathesis finds no 5xx while the broker is up, with
API keys on (with and without credentials) and off."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from adstream.local.broker import LocalBroker
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

SERVE = [sys.executable, "-m", "adstream", "serve"]


@contextmanager
def _serving(
    broker: LocalBroker, workdir: Path, env: dict[str, str], output: IO[bytes] | int
) -> Iterator[str]:
    port = free_port()
    config = broker.layout.client_properties("tls")
    db = f"sqlite:///{workdir / 'counts.db'}"
    process = subprocess.Popen(
        [*SERVE, "--kafka-config", str(config), "--port", str(port), "--workers", "2", "--db", db],
        stdout=output,
        stderr=subprocess.STDOUT,
        env=os.environ | env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"the server exited with {process.returncode}"
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


@pytest.fixture(scope="module")
def server(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serving(
        broker, tmp_path_factory.mktemp("api"), {"ADSTREAM_API_AUTH": "none"}, subprocess.DEVNULL
    ) as url:
        yield url


@dataclass(frozen=True)
class KeyedServer:
    url: str
    key: str  # a key with default scopes
    scarce: str  # a key whose bucket holds 3 events
    log: Path  # everything the server printed


def _create_key(env: dict[str, str], *options: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "adstream", "keys", "create", *options],
        env=os.environ | env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    [key] = re.findall(r"^API key: +(\S+)$", done.stdout, re.MULTILINE)
    return key


@pytest.fixture(scope="module")
def keyed_server(
    broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KeyedServer]:
    """`adstream serve` with ADSTREAM_API_AUTH=keys and keys made by `adstream keys create`."""
    workdir = tmp_path_factory.mktemp("keyed-api")
    env = {
        "ADSTREAM_API_AUTH": "keys",
        "ADSTREAM_API_KEYS_FILE": str(workdir / "keys.json"),
        "ADSTREAM_API_PEPPER_FILE": str(workdir / "pepper"),
        "ADSTREAM_LOG_LEVEL": "DEBUG",
    }
    key = _create_key(env, "--caller", "adserver-eu")
    scarce = _create_key(
        env, "--caller", "tiny", "--rate", "0.001", "--burst", "3", "--max-events", "3"
    )
    log = workdir / "server.log"
    with log.open("wb") as output, _serving(broker, workdir, env, output) as url:
        yield KeyedServer(url, key, scarce, log)


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


def _no_server_errors(url: str, headers: dict[str, str] | None = None) -> None:
    """Every documented operation, with generated valid and invalid input, never gets a 5xx.

    Driven through Hypothesis directly: schemathesis' pytest plugin does not load with
    this pytest version.
    """
    api = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        check()


def test_no_server_errors_while_the_broker_is_up(server: str) -> None:
    _no_server_errors(server)


def test_no_server_errors_with_keys_with_and_without_credentials(
    keyed_server: KeyedServer,
) -> None:
    _no_server_errors(keyed_server.url)
    _no_server_errors(keyed_server.url, {"Authorization": f"Bearer {keyed_server.key}"})


def test_keys_mode_needs_a_key(keyed_server: KeyedServer) -> None:
    url = keyed_server.url
    assert httpx.post(f"{url}/ads/AD1/impression").status_code == 401
    auth = {"Authorization": f"Bearer {keyed_server.key}"}
    assert httpx.post(f"{url}/ads/AD1/impression", headers=auth).status_code == 200


def test_the_rate_limit_is_shared_by_the_workers(keyed_server: KeyedServer) -> None:
    """A new connection per request, so both workers answer; together they admit 3."""
    auth = {"Authorization": f"Bearer {keyed_server.scarce}"}
    statuses = [
        httpx.post(f"{keyed_server.url}/ads/AD{i}/impression", headers=auth).status_code
        for i in range(8)
    ]
    assert sorted(statuses) == [200] * 3 + [429] * 5


def test_keys_never_appear_in_the_servers_output(keyed_server: KeyedServer) -> None:
    url = keyed_server.url
    for key in (keyed_server.key, keyed_server.scarce):
        httpx.post(f"{url}/ads/AD1/click", headers={"Authorization": f"Bearer {key}"})
        httpx.post(f"{url}/ads/AD1/click", headers={"Authorization": f"Bearer {key}0"})
        httpx.post(f"{url}/events", headers={"Authorization": f"Bearer {key}"}, content=b"[")
    output = keyed_server.log.read_text()  # lines are written as they are logged
    assert "granian" in output.lower()  # the capture works: the server logged
    for key in (keyed_server.key, keyed_server.scarce):
        assert key not in output
        assert key.split(".")[2] not in output


def test_no_auth_is_refused_on_a_public_address(broker: LocalBroker) -> None:
    config = broker.layout.client_properties("tls")
    done = subprocess.run(
        [*SERVE, "--host", "0.0.0.0", "--kafka-config", str(config)],  # noqa: S104
        env=os.environ | {"ADSTREAM_API_AUTH": "none"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "only allowed on a loopback address" in done.stderr


REQUESTS: list[tuple[str, str, dict[str, object]]] = [
    ("POST", "/ads/AD1/impression", {"headers": {"Idempotency-Key": "same-1"}}),
    ("POST", "/ads/AD1/click?x=1", {"headers": {"Idempotency-Key": "same-2"}}),
    ("POST", "/ads/AD%31/impression", {"headers": {"Idempotency-Key": "same-3"}}),
    ("POST", "/ads/bad%20id/impression", {}),
    ("POST", "/ads/AD1/impression", {"headers": {"Idempotency-Key": "has space"}}),
    ("POST", "/ads/AD1/impression", {"headers": {"Idempotency-Key": b"cl\xe9"}}),
    ("POST", "/ads/AD1/view", {}),
    ("GET", "/ads/AD1/impression", {}),
    (
        "POST",
        "/events",
        {"json": [{"adId": "AD1", "eventId": "0190e6c2-0000-7000-8000-000000000001"}]},
    ),
    ("POST", "/events", {"content": b"[", "headers": {"content-type": "application/json"}}),
    (  # ~90 KB: the body reaches the app in several chunks
        "POST",
        "/events",
        {
            "json": [
                {"adId": f"AD{i:060d}", "eventId": f"0190e6c2-0000-7000-8000-{i:012d}"}
                for i in range(1000)
            ]
        },
    ),
    ("POST", "/events", {"content": b"x", "headers": {"content-type": "text/plain"}}),
    ("GET", "/pixel.gif?adId=bad%20id", {}),
    ("GET", "/healthz", {}),
    ("GET", "/openapi.json", {}),
    ("GET", "/stats/totals", {}),
    ("GET", "/nowhere?a=1", {}),
    (
        "GET",
        "/ws",
        {
            "headers": {
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            }
        },
    ),
]
_COMPARED = ("content-type", "content-length", "x-event-id", "retry-after", "cache-control")


def test_rsgi_and_asgi_fronts_answer_alike_and_shut_down_flushing(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """`adstream serve` under RSGI (the default) answers as under ASGI, including the
    routes it bridges to FastAPI; on SIGTERM every worker runs the app's shutdown (the
    producer's final flush). (A body over the limit is left to test_ingest_api: a server
    answering 413 before reading it may cut the upload, which httpx reports as an error.)"""
    answers: dict[str, list[tuple[int, bytes, dict[str, str | None]]]] = {}
    log = tmp_path / "rsgi.log"
    with log.open("wb") as output:
        for interface in ("asgi", "rsgi"):
            env = {"ADSTREAM_API_AUTH": "none", "ADSTREAM_API_INTERFACE": interface}
            workdir = tmp_path / interface
            workdir.mkdir()
            out: IO[bytes] | int = output if interface == "rsgi" else subprocess.DEVNULL
            with _serving(broker, workdir, env, out) as url, httpx.Client(base_url=url) as client:
                answers[interface] = []
                for method, path, options in REQUESTS:
                    answer = client.request(method, path, **options)  # type: ignore[arg-type]
                    headers = {name: answer.headers.get(name) for name in _COMPARED}
                    answers[interface].append((answer.status_code, answer.content, headers))
                    assert len(answer.headers.get_list("content-length")) <= 1, path
    assert [a[0] for a in answers["rsgi"]] == [a[0] for a in answers["asgi"]]
    for request, rsgi, asgi in zip(REQUESTS, answers["rsgi"], answers["asgi"], strict=True):
        assert rsgi == asgi, request
    closed = log.read_text().count("Kafka producer closed: every queued event was settled")
    assert closed == 2, log.read_text()[-3000:]  # one per worker
