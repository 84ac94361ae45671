"""Exactly-once under crashes: the aggregator is SIGKILLed again and again while events arrive.

The aggregator runs as the real ``adstream aggregate`` command (mutual TLS as
``adstream-aggregator``, the default path) against SQLite and PostgreSQL. The
final counts must equal the counts of the distinct events produced, exactly.

Each round starts the aggregator, produces a wave of events beside it and kills it as
soon as the database shows progress in that round: kills are triggered by conditions,
not by sleeps, and each lands after some events were counted and before all were.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from adstream.aggregate.model import MINUTE_MS, minute_of
from adstream.aggregate.store_url import open_store
from adstream.events.model import AdEvent
from adstream.local.broker import LocalBroker
from tests.integration.aggregate_helpers import (
    RECENT_MINUTE,
    PrivateTopic,
    admin_producer,
    aggregate_command,
    event,
    private_topic,
    send_event,
)

pytestmark = pytest.mark.integration

T0 = RECENT_MINUTE
PER_WAVE = 400
KILLS = 6


class Workload:
    """Produces waves of events (with client-retry duplicates and seed-format records)."""

    def __init__(self, broker: LocalBroker, topic: PrivateTopic, seed: int) -> None:
        self.broker, self.topic = broker, topic
        self.random = random.Random(seed)
        self.expected: Counter[tuple[str, int, str]] = Counter()
        self.sent: list[AdEvent] = []
        self.producer = admin_producer(broker)

    def wave(self) -> None:
        """PER_WAVE events, flushed in small groups so the aggregator sees a stream."""
        for n in range(PER_WAVE):
            self._one(self.producer)
            if n % 50 == 49:
                assert self.producer.flush(30) == 0
        assert self.producer.flush(30) == 0

    def wave_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.wave, daemon=True)
        thread.start()
        return thread

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
    cmd, env = aggregate_command(
        broker, topic, db_url, "--instance-id", "crash-test", "--batch-size", "50"
    )
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_for_progress(db_url: str, beyond: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the database holds more than ``beyond`` counted events."""
    deadline = time.monotonic() + 90
    while _counted(db_url) <= beyond:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)


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
    progress_at_kill = []
    for _ in range(KILLS):
        proc = _start(broker, topic, db_url, log)
        before = _counted(db_url)
        producing = workload.wave_in_background()
        _wait_for_progress(db_url, before, proc, log)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        producing.join(60)
        assert not producing.is_alive()
        progress_at_kill.append(_counted(db_url))
    workload.wave()  # the last wave arrives while no aggregator runs

    expected = workload.expected_totals()
    final = _start(broker, topic, db_url, log)
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
    # Every kill landed while events were being counted: after some, before all.
    total = sum(i + c for _, _, i, c in expected)
    assert all(0 < n < total for n in progress_at_kill), progress_at_kill
    assert progress_at_kill == sorted(progress_at_kill), progress_at_kill
