"""Exactly-once under crashes: the aggregator is SIGKILLed again and again while events arrive.

The aggregator runs as the real ``adstream aggregate`` command (mutual TLS as
``adstream-aggregator``, the default path) against SQLite and PostgreSQL. The
final counts must equal the counts of the distinct events produced, exactly.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from adstream.aggregate.model import MINUTE_MS, minute_of
from adstream.aggregate.stores import open_store
from adstream.events.model import AdEvent
from adstream.local.broker import LocalBroker
from tests.integration.aggregate_helpers import (
    PrivateTopic,
    admin_producer,
    event,
    private_topic,
    send_event,
)

pytestmark = pytest.mark.integration

T0 = 1_790_000_040_000
WAVES, PER_WAVE = 30, 100
KILLS = 6


class Workload:
    """Produces waves of events (with client-retry duplicates and seed-format records)."""

    def __init__(self, broker: LocalBroker, topic: PrivateTopic, seed: int) -> None:
        self.broker, self.topic = broker, topic
        self.random = random.Random(seed)
        self.expected: Counter[tuple[str, int, str]] = Counter()
        self.sent: list[AdEvent] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        producer = admin_producer(self.broker)
        for _ in range(WAVES):
            for _ in range(PER_WAVE):
                self._one(producer)
            assert producer.flush(30) == 0
            time.sleep(0.4)  # spread the events over the kill rounds

    def _one(self, producer) -> None:  # type: ignore[no-untyped-def]
        roll = self.random.random()
        ts = T0 + self.random.randrange(5 * MINUTE_MS)
        ad = f"AD{self.random.randrange(20)}"
        if roll < 0.1 and self.sent:  # a client retry: the same event id again
            send_event(producer, self.topic.topic, self.random.choice(self.sent))
        elif roll < 0.2:  # the seed's Spring JsonSerializer format, no event id
            body = b'{"adId":"%s","timestamp":%d,"impressions":2}' % (ad.encode(), ts)
            producer.produce(self.topic.topic, key=ad.encode(), value=body)
            self.expected[(ad, minute_of(ts), "impressions")] += 2
        else:
            click = roll > 0.9
            new = event(ad, ts, click=click)
            send_event(producer, self.topic.topic, new)
            self.sent.append(new)
            self.expected[(ad, minute_of(ts), "clicks" if click else "impressions")] += 1

    def expected_totals(self) -> list[tuple[str, int, int, int]]:
        keys = sorted({(ad, minute) for ad, minute, _ in self.expected})
        return [
            (ad, m, self.expected[(ad, m, "impressions")], self.expected[(ad, m, "clicks")])
            for ad, m in keys
        ]


def _start(
    broker: LocalBroker, topic: PrivateTopic, db_url: str, log: Path
) -> subprocess.Popen[bytes]:
    env = os.environ | {"ADSTREAM_LOCAL_KAFKA_DIR": str(broker.layout.root)}
    env.pop("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS", None)
    cmd = [
        sys.executable,
        "-m",
        "adstream",
        "aggregate",
        "--db",
        db_url,
        "--topic",
        topic.topic,
        "--dead-letter-topic",
        topic.dead_letters,
        "--group",
        topic.group,
        "--instance-id",
        "crash-test",
        "--batch-size",
        "50",
    ]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_for_log(log: Path, text: str, times: int, proc: subprocess.Popen[bytes]) -> None:
    """Until ``text`` appears ``times`` times: the process is up and has its partitions."""
    deadline = time.monotonic() + 60
    while log.read_text().count(text) < times:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def _counted(db_url: str) -> int:
    store = open_store(db_url)
    try:
        return sum(i + c for _, _, i, c in store.totals())
    finally:
        store.close()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_counts_are_exact_after_repeated_sigkill(
    broker: LocalBroker, request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> None:
    db_url = (
        f"sqlite:///{tmp_path / 'counts.db'}"
        if database == "sqlite"
        else request.getfixturevalue("postgres").new_database()
    )
    topic = private_topic(broker)
    workload = Workload(broker, topic, seed=7)
    log = tmp_path / "aggregator.log"
    rng = random.Random(11)
    workload.thread.start()
    progress_at_kill = []
    for _ in range(KILLS):
        proc = _start(broker, topic, db_url, log)
        time.sleep(rng.uniform(1.5, 3.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        progress_at_kill.append(_counted(db_url))
    workload.thread.join(120)
    assert not workload.thread.is_alive()

    expected = workload.expected_totals()
    final = _start(broker, topic, db_url, log)
    _wait_for_log(log, "assigned", KILLS + 1, final)
    try:
        deadline = time.monotonic() + 90
        store = open_store(db_url)
        try:
            while list(store.totals()) != expected and time.monotonic() < deadline:
                assert final.poll() is None, log.read_text()[-3000:]
                time.sleep(0.5)
            assert list(store.totals()) == expected, log.read_text()[-3000:]
        finally:
            store.close()
    finally:
        final.send_signal(signal.SIGTERM)
        assert final.wait(30) == 0, log.read_text()[-3000:]
    # The kills landed while events were being counted, not only before or after.
    total = sum(i + c for _, _, i, c in expected)
    assert sum(1 for n in progress_at_kill if 0 < n < total) >= 3, progress_at_kill
