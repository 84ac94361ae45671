"""Helpers the ingest integration tests share: settings for a broker, Java's partition
for a key, and reading back what the API published."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Message, TopicPartition

from adstream.kafka.settings import KafkaSettings
from adstream.kafka.topics import AD_EVENTS_TOPIC
from adstream.local.broker import LocalBroker
from adstream.local.layout import Listener
from tests.integration.kafka_helpers import client_config

JAVA_DIR = Path(__file__).parent / "java"
JAVA_PARTITIONER = JAVA_DIR / "JavaPartitioner.java"
JAVA_READER = JAVA_DIR / "JavaAdEventReader.java"


def _compiled(broker: LocalBroker, source: Path, out: Path) -> Path:
    if not (out / f"{source.stem}.class").exists():
        javac = shutil.which("javac")
        assert javac is not None, "javac (JDK 17+) is needed for the Java interoperability tests"
        cmd = [javac, "-d", str(out), "-cp", broker.dist.classpath, str(source)]
        subprocess.run(cmd, check=True, timeout=120)
    return out


def run_java_reader(broker: LocalBroker, workdir: Path, partition: int, offset: int) -> str:
    """What a Java consumer (Jackson into the seed's AdEvent) prints for one record."""
    classes = _compiled(broker, JAVA_READER, workdir / "java-reader")
    properties = broker.layout.client_properties("plaintext")
    done = subprocess.run(
        [
            "java",
            "-cp",
            f"{classes}:{broker.dist.classpath}",
            "JavaAdEventReader",
            str(properties),
            f"adstream-dev-{uuid.uuid4().hex}",
            AD_EVENTS_TOPIC,
            str(partition),
            str(offset),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def plaintext_settings(broker: LocalBroker) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=(broker.ports.bootstrap(Listener.PLAINTEXT),))


def reader_config(broker: LocalBroker) -> dict[str, object]:
    return {
        **client_config(broker, Listener.PLAINTEXT),
        "group.id": f"adstream-dev-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
    }


def java_partitions(
    broker: LocalBroker, workdir: Path, partitions: int, *keys: str
) -> dict[str, int]:
    """The partition Java's default partitioner picks for each key (compiled on first use)."""
    classes = _compiled(broker, JAVA_PARTITIONER, workdir / "java-partitioner")
    done = subprocess.run(
        [
            "java",
            "-cp",
            f"{classes}:{broker.dist.classpath}",
            "JavaPartitioner",
            str(partitions),
            *keys,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return {key: int(part) for key, part in (line.split() for line in done.stdout.splitlines())}


def high_watermarks(broker: LocalBroker, topic: str = AD_EVENTS_TOPIC) -> dict[int, int]:
    consumer = Consumer(reader_config(broker))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def read_from(
    broker: LocalBroker, starts: dict[int, int], count: int, topic: str = AD_EVENTS_TOPIC
) -> list[Message]:
    """`count` messages written after the offsets in `starts` (partition -> offset)."""
    consumer = Consumer(reader_config(broker))
    try:
        consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
        messages: list[Message] = []
        for _ in range(200):
            if len(messages) >= count:
                break
            message = consumer.poll(0.2)
            if message is not None:
                assert message.error() is None, message.error()
                messages.append(message)
        return messages
    finally:
        consumer.close()
