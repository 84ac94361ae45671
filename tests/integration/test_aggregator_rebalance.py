"""A second aggregator instance joining takes partitions over cooperatively: the first one
gives up only the partitions that move and keeps counting the others (an eager assignor
would revoke all six and stop every partition for the rebalance)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from adstream.aggregate.model import ConsumerFatalError
from adstream.aggregate.store_url import open_store
from adstream.local.broker import LocalBroker
from tests.integration.aggregate_helpers import RunningAggregator, private_topic, wait_until
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration

PARTITIONS = 6


class Revocations(logging.Handler):
    """The partitions each aggregator thread was asked to give up (its ``revoked`` log)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.by_thread: dict[str, list[int]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("revoked "):
            self.by_thread.setdefault(record.threadName or "", []).extend(record.args[0])  # type: ignore[index]


@pytest.fixture
def revocations() -> Iterator[Revocations]:
    handler = Revocations()
    logger = logging.getLogger("adstream.aggregate.consumer")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_joining_instance_moves_only_the_partitions_it_takes(
    broker: LocalBroker, postgres: PostgresServer, revocations: Revocations
) -> None:
    topic = private_topic(broker, partitions=PARTITIONS)
    db_url = postgres.new_database()
    first_store, second_store = open_store(db_url), open_store(db_url)
    try:
        with RunningAggregator(broker, topic, first_store) as first:
            consumer = first.aggregator.consumer
            wait_until(lambda: len(consumer.assignment()) == PARTITIONS, timeout=60)
            with RunningAggregator(broker, topic, second_store) as second:
                wait_until(lambda: len(consumer.assignment()) < PARTITIONS, timeout=60)
                wait_until(lambda: second.aggregator.consumer.assignment() != [], timeout=60)
                kept = {tp.partition for tp in consumer.assignment()}
                given = revocations.by_thread.get(first.thread.name, [])
                assert sorted(given) == sorted(set(range(PARTITIONS)) - kept)
    finally:
        first_store.close()
        second_store.close()


def test_an_instance_fenced_by_its_static_id_ends_instead_of_spinning(
    broker: LocalBroker, postgres: PostgresServer
) -> None:
    """Two instances started with one ``--instance-id``: the broker fences the older one,
    whose consumer can then never consume again. It must end (its supervisor restarts it),
    not log the fatal error forever while counting nothing."""
    topic = private_topic(broker, partitions=PARTITIONS)
    db_url = postgres.new_database()
    first_store, second_store = open_store(db_url), open_store(db_url)
    failures: list[BaseException] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)  # type: ignore[arg-type,assignment]
    try:
        with RunningAggregator(broker, topic, first_store, instance_id="same") as first:
            consumer = first.aggregator.consumer
            wait_until(lambda: len(consumer.assignment()) == PARTITIONS, timeout=60)
            with RunningAggregator(broker, topic, second_store, instance_id="same"):
                wait_until(lambda: not first.thread.is_alive(), timeout=90)
        assert any(isinstance(f, ConsumerFatalError) for f in failures), failures
    finally:
        threading.excepthook = previous_hook
        first_store.close()
        second_store.close()
