"""A served worker whose producer fails fatally answers 503 and is replaced by a fresh one.

Runs the same Granian set-up as `adstream serve` (`run_server`), one worker, with an app
that adds a route to trigger librdkafka's own fatal error in that worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from adstream.local.broker import LocalBroker
from adstream.local.layout import Listener
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


def _until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.fixture
def server(broker: LocalBroker) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = os.environ | {
        "ADSTREAM_KAFKA_BOOTSTRAP_SERVERS": broker.ports.bootstrap(Listener.PLAINTEXT)
    }
    env.pop("ADSTREAM_KAFKA_CONFIG", None)
    code = (
        "from adstream.ingest.cli import run_server; "
        f"run_server('tests.integration.fatal_app:create', '127.0.0.1', {port}, 1)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200, "not ready")
        yield url, process
    finally:
        process.terminate()
        process.wait(30)


def test_a_fatally_failed_worker_answers_503_and_is_replaced(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = server
    assert httpx.post(f"{url}/ads/F1/impression").status_code == 200
    first = httpx.post(f"{url}/_test/fatal").json()["pid"]
    answer = httpx.post(f"{url}/ads/F1/impression")
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "producer_fatal"
    assert httpx.get(f"{url}/healthz").status_code == 503
    # The worker exits and the server starts a new one, with a new producer.
    _until(lambda: httpx.get(f"{url}/_test/pid", timeout=2).json()["pid"] != first, "no new worker")
    _until(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, "not healthy again")
    assert httpx.post(f"{url}/ads/F1/impression").status_code == 200
    assert process.poll() is None
