"""Two aggregator instances on one PostgreSQL database, through a rebalance.

Each instance has its own consumer (same group) and its own database connection, as two
processes would. Some event ids arrive on two partitions at once (a client that reuses
an `eventId` across ads): before ``ON CONFLICT DO NOTHING`` the second claim raised a
unique violation (or deadlocked) and killed its instance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from adstream.aggregate.model import minute_of
from adstream.aggregate.store import SqlCountStore
from adstream.aggregate.store_url import open_store
from adstream.events.wire import headers, key, value
from adstream.local.broker import LocalBroker
from tests.integration.aggregate_helpers import (
    RECENT_MINUTE,
    PrivateTopic,
    RunningAggregator,
    admin_producer,
    event,
    private_topic,
    wait_until,
)
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration

PARTITIONS = 6


@pytest.fixture
def db_url(postgres: PostgresServer) -> str:
    return postgres.new_database()


@pytest.fixture
def stores(db_url: str) -> Iterator[tuple[SqlCountStore, SqlCountStore]]:
    first, second = open_store(db_url), open_store(db_url)
    yield first, second
    first.close()
    second.close()


class Events:
    """Produces waves of events, some with one id on two partitions; knows the exact counts."""

    def __init__(self, broker: LocalBroker, topic: PrivateTopic) -> None:
        self.producer = admin_producer(broker)
        self.topic = topic.topic
        self.expected: Counter[tuple[str, int]] = Counter()
        self.sent = 0

    def wave(self, n: int, offset: int) -> None:
        for i in range(n):
            ad_event = event(f"AD{(offset + i) % 17}", RECENT_MINUTE + (i % 3) * 60_000)
            copies = 2 if i % 10 == 0 else 1  # the same eventId on two partitions
            for copy in range(copies):
                self.producer.produce(
                    self.topic,
                    key=key(ad_event),
                    value=value(ad_event),
                    headers=headers(ad_event),
                    partition=(offset + i + copy * 3) % PARTITIONS,
                )
            self.expected[(ad_event.ad_id, minute_of(ad_event.timestamp))] += 1
            self.sent += copies
        assert self.producer.flush(30) == 0

    def totals(self) -> list[tuple[str, int, int, int]]:
        return [(ad, m, n, 0) for (ad, m), n in sorted(self.expected.items())]


def test_two_instances_and_a_rebalance_count_exactly_once(
    broker: LocalBroker, stores: tuple[SqlCountStore, SqlCountStore], db_url: str
) -> None:
    topic = private_topic(broker, partitions=PARTITIONS)
    events = Events(broker, topic)
    first_store, second_store = stores
    check = open_store(db_url)
    try:
        with RunningAggregator(broker, topic, first_store, batch_size=50) as first:
            second = RunningAggregator(broker, topic, second_store, batch_size=50)
            with second:
                events.wave(600, offset=0)
                wait_until(lambda: list(check.totals()) == events.totals(), timeout=60)
                assert first.thread.is_alive()
                assert second.thread.is_alive()
                both = first.counted("counted") + second.counted("counted")
                assert both == sum(events.expected.values())
            # The second instance left the group: the first takes all partitions over.
            events.wave(600, offset=1000)
            wait_until(
                lambda: list(check.totals()) == events.totals(),
                timeout=60,
                state=lambda: (sum(n for *_, n, _ in check.totals()), events.expected.total()),
            )
            assert first.thread.is_alive()
        counted = first.counted("counted") + second.counted("counted")
        duplicates = first.counted("duplicate") + second.counted("duplicate")
        assert counted == sum(events.expected.values())
        assert counted + duplicates >= events.sent
        assert check.load_offsets(topic.topic).keys() == set(range(PARTITIONS))
    finally:
        check.close()
