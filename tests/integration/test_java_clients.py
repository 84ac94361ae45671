"""Java clients connect with the generated ``client-*.properties`` and JKS stores."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from adstream.kafka.topics import AD_EVENTS_TOPIC, AGGREGATOR_GROUP
from adstream.local.broker import LocalBroker
from tests.integration.kafka_helpers import properties_as_aggregator

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).parent / "java" / "JavaRoundTrip.java"


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory: pytest.TempPathFactory, broker: LocalBroker) -> Path:
    javac = shutil.which("javac")
    if javac is None:
        pytest.fail("javac (JDK 17+) is needed to compile the Java client test")
    out = tmp_path_factory.mktemp("java")
    subprocess.run(
        [javac, "-d", str(out), "-cp", broker.dist.classpath, str(SOURCE)], check=True, timeout=120
    )
    return out


@pytest.mark.parametrize("name", ["tls", "scram"])
def test_java_client_round_trip_with_generated_properties(
    broker: LocalBroker, java_classes: Path, tmp_path: Path, name: str
) -> None:
    producer_props = broker.layout.client_properties(name)
    consumer_props = properties_as_aggregator(producer_props, broker, tmp_path)
    value = uuid.uuid4().hex
    classpath = f"{java_classes}:{broker.dist.classpath}"
    done = subprocess.run(
        [
            "java",
            "-cp",
            classpath,
            "JavaRoundTrip",
            str(producer_props),
            str(consumer_props),
            AD_EVENTS_TOPIC,
            AGGREGATOR_GROUP,
            "AD123",
            value,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"key=AD123 value={value}" in done.stdout
