"""The Iceberg sink on the real broker and a real Kafka Connect worker: every event once.

One worker for the session (``connect_worker``), sinking a private topic so that other
tests' traffic on ``ad-events`` stays out of the table. Events come through the HTTP API
(adstream's format) and a plain producer (the seed's Spring format); the worker is
SIGKILLed right after its coordinator starts a commit, then restarted. The table must then
hold each record exactly once, and agree with the aggregator, per ad and day.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AclOperation, ResourceType
from fastapi.testclient import TestClient

from adstream.aggregate.store import SqlCountStore
from adstream.events import epoch_ms
from adstream.ingest.app import create_app
from adstream.ingest.config import ApiSettings
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import local_kafka_settings
from adstream.local.connect import LocalConnect
from adstream.local.connect_config import CONNECT_PRINCIPAL, ConnectLayout
from adstream.local.connect_jars import ensure_connect_jars
from adstream.local.processes import wait_exit
from adstream.warehouse.layout import WarehouseLayout
from adstream.warehouse.query import IMPRESSIONS_PER_AD_PER_DAY, run_query
from adstream.warehouse.table import open_catalog
from tests.integration.aggregate_helpers import (
    PrivateTopic,
    RunningAggregator,
    admin_producer,
    private_topic,
    wait_until,
)
from tests.integration.kafka_helpers import allow, client_config
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

COMMIT_INTERVAL_MS = 1_000
"""Iceberg's default is 5 minutes; the test commits every second to stay short."""
ADS = [f"WH-{i}" for i in range(5)]
API = "adstream-api"
INITIATED = re.compile(r"Coordinator \S+ initiated commit (\S+)")
COMPLETED = re.compile(r"Coordinator \S+ completed commit (\S+),")


@dataclass
class Sink:
    worker: LocalConnect
    topic: PrivateTopic
    warehouse: WarehouseLayout


@pytest.fixture(scope="session")
def connect_worker(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    """One Connect worker for the session, sinking a topic of its own into a fresh table."""
    topic = private_topic(broker, partitions=3)
    grants = [
        allow(CONNECT_PRINCIPAL, AclOperation.READ, ResourceType.TOPIC, topic.topic),
        allow(CONNECT_PRINCIPAL, AclOperation.DESCRIBE, ResourceType.TOPIC, topic.topic),
        allow(API, AclOperation.WRITE, ResourceType.TOPIC, topic.topic),
        allow(API, AclOperation.DESCRIBE, ResourceType.TOPIC, topic.topic),
    ]
    admin = broker.admin()
    for future in admin.create_acls(grants).values():
        future.result(30)
    root = tmp_path_factory.mktemp("connect")
    warehouse = WarehouseLayout.at(root / "warehouse")
    worker = LocalConnect(
        ConnectLayout.at(root / "worker"),
        ensure_connect_jars(progress=print),
        broker.layout,
        broker.ports,
        warehouse,
        rest_port=free_port(),
        commit_interval_ms=COMMIT_INTERVAL_MS,
        topic=topic.topic,
    )
    started = time.monotonic()
    worker.up(progress=print)
    print(f"Connect worker ready in {time.monotonic() - started:.1f}s")
    yield Sink(worker, topic, warehouse)
    worker.down()


def _rows(sink: Sink, sql: str) -> list[tuple[object, ...]]:
    return run_query(open_catalog(sink.warehouse), sql).rows


def _row_count(sink: Sink) -> int:
    [(count,)] = _rows(sink, "SELECT count(*) FROM ad_events_raw")
    return int(count)  # type: ignore[call-overload]


def _end_offsets(broker: LocalBroker, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer

    consumer = Consumer({**client_config(broker, principal="admin"), "group.id": "wh-probe"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


class Traffic:
    """Events through the API and seed-format events through a producer, remembered."""

    def __init__(self, broker: LocalBroker, sink: Sink) -> None:
        settings = local_kafka_settings(broker.layout, broker.ports, API)
        self.app = create_app(settings, ApiSettings(topic=sink.topic.topic))
        self.producer = admin_producer(broker)
        self.topic = sink.topic.topic
        self.sent = 0
        self.seq = 0

    def wave(self, client: TestClient, api_events: int, seed_events: int) -> None:
        for _ in range(api_events):
            self.seq += 1
            ad = ADS[self.seq % len(ADS)]
            kind = "click" if self.seq % 7 == 0 else "impression"
            assert client.post(f"/ads/{ad}/{kind}").status_code == 200
        for _ in range(seed_events):
            self.seq += 1
            ad = ADS[self.seq % len(ADS)]
            # The seed's Spring JsonSerializer output: no eventId, no type.
            body = {"adId": ad, "timestamp": epoch_ms(), "impressions": 1 + self.seq % 3}
            self.producer.produce(
                self.topic,
                key=ad.encode(),
                value=orjson.dumps(body),
                headers=[("__TypeId__", b"com.example.AdEvent")],
            )
        assert self.producer.flush(20) == 0
        self.sent += api_events + seed_events


def _commits(log: Path, pattern: re.Pattern[str]) -> list[str]:
    return pattern.findall(log.read_text(errors="replace")) if log.exists() else []


def _kill_during_next_commit(worker: LocalConnect) -> tuple[str, bool]:
    """SIGKILL the worker as soon as its coordinator logs a new ``initiated commit``;
    return that commit's id and whether it had completed before the kill."""
    log = worker.layout.worker_log
    seen = set(_commits(log, INITIATED))
    pid = worker.running_pid()
    assert pid is not None
    fresh: list[str] = []

    def new_commit() -> bool:
        fresh[:] = [c for c in _commits(log, INITIATED) if c not in seen]
        return bool(fresh)

    wait_until(new_commit, timeout=60, state=lambda: worker.status())
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(pid, 15)
    return fresh[0], fresh[0] in _commits(log, COMPLETED)


def _aggregator_daily(store: SqlCountStore) -> list[tuple[str, dt.date, int]]:
    daily: Counter[tuple[str, dt.date]] = Counter()
    for ad, minute, impressions, _clicks in store.totals():
        daily[ad, dt.datetime.fromtimestamp(minute / 1000, dt.UTC).date()] += impressions
    return sorted((ad, day, n) for (ad, day), n in daily.items() if n)


def test_every_event_lands_once_despite_a_sigkill_during_a_commit(
    broker: LocalBroker, connect_worker: Sink, store: SqlCountStore
) -> None:
    sink, started = connect_worker, time.monotonic()
    traffic = Traffic(broker, sink)
    with TestClient(traffic.app) as client:
        traffic.wave(client, api_events=120, seed_events=30)
        wait_until(lambda: _row_count(sink) > 0, timeout=60)
        # A second wave, so the commit the kill interrupts has files to commit.
        traffic.wave(client, api_events=120, seed_events=30)
        commit, completed = _kill_during_next_commit(sink.worker)
        assert not completed, f"commit {commit} completed before the kill"
        traffic.wave(client, api_events=60, seed_events=15)  # while the worker is down
        restarted = time.monotonic()
        sink.worker.up(progress=print)
        traffic.wave(client, api_events=60, seed_events=15)
    wait_until(lambda: _row_count(sink) >= traffic.sent, timeout=120, state=sink.worker.status)
    print(f"all {traffic.sent} rows in {time.monotonic() - restarted:.1f}s after the restart")

    assert _row_count(sink) == traffic.sent
    duplicates = _rows(
        sink,
        "SELECT _kafka_metadata_partition, _kafka_metadata_offset, count(*) FROM ad_events_raw "
        "GROUP BY ALL HAVING count(*) > 1",
    )
    assert duplicates == []
    ends = _end_offsets(broker, sink.topic.topic)
    per_partition = _rows(
        sink,
        "SELECT _kafka_metadata_partition, min(_kafka_metadata_offset), "
        "max(_kafka_metadata_offset) FROM ad_events_raw GROUP BY 1 ORDER BY 1",
    )
    assert per_partition == [(p, 0, end - 1) for p, end in sorted(ends.items()) if end]
    [(seed_rows,)] = _rows(sink, "SELECT count(*) FROM ad_events_raw WHERE eventId IS NULL")
    assert seed_rows == 90

    with RunningAggregator(broker, sink.topic, store) as running:
        wait_until(lambda: running.counted("counted") == traffic.sent, timeout=60)
    warehouse_daily = [
        (str(ad), day, int(n))  # type: ignore[call-overload]
        for ad, day, n in _rows(sink, IMPRESSIONS_PER_AD_PER_DAY)
    ]
    assert warehouse_daily == _aggregator_daily(store)
    print(f"test body took {time.monotonic() - started:.1f}s")
