"""Java clients connect with the generated ``client-*.properties`` and JKS stores."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from adstream.local.acls import AD_EVENTS_TOPIC, AGGREGATOR_GROUP
from adstream.local.broker import LocalBroker

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


def _aggregator_properties(broker: LocalBroker, source: Path, tmp_path: Path) -> Path:
    """The same file for the reading principal: its keystore / SCRAM user instead."""
    text = source.read_text()
    text = text.replace("adstream-api.keystore.jks", "adstream-aggregator.keystore.jks")
    password = broker.secrets().scram_password
    text = text.replace(
        f'username="adstream-api" password="{password("adstream-api")}"',
        f'username="adstream-aggregator" password="{password("adstream-aggregator")}"',
    )
    target = tmp_path / f"aggregator-{source.name}"
    target.write_text(text)
    return target


@pytest.mark.parametrize("name", ["tls", "scram"])
def test_java_client_round_trip_with_generated_properties(
    broker: LocalBroker, java_classes: Path, tmp_path: Path, name: str
) -> None:
    producer_props = broker.layout.client_properties(name)
    consumer_props = _aggregator_properties(broker, producer_props, tmp_path)
    assert consumer_props.read_text() != producer_props.read_text()
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
