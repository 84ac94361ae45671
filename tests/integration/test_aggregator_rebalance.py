"""A second aggregator instance joining takes partitions over cooperatively: the first one
gives up only the partitions that move and keeps counting the others (an eager assignor
would revoke all six and stop every partition for the rebalance). And an instance fenced by
its static id ends instead of spinning."""

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


class Assignments(logging.Handler):
    """Each aggregator thread's partitions, from its ``assigned``/``revoked`` log lines
    (the consumer itself is not called from another thread while it consumes)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.owned: dict[str, set[int]] = {}
        self.revoked: dict[str, list[int]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        thread, message, args = record.threadName or "", str(record.msg), record.args
        if not isinstance(args, tuple) or not args:
            return
        if message.startswith("assigned "):
            self.owned.setdefault(thread, set()).update(p for p, _ in args[0])
        elif message.startswith("revoked "):
            self.owned.setdefault(thread, set()).difference_update(args[0])
            self.revoked.setdefault(thread, []).extend(args[0])

    def of(self, aggregator: RunningAggregator) -> set[int]:
        return self.owned.get(aggregator.thread.name, set())


@pytest.fixture
def assignments() -> Iterator[Assignments]:
    handler = Assignments()
    logger = logging.getLogger("adstream.aggregate.consumer")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_joining_instance_moves_only_the_partitions_it_takes(
    broker: LocalBroker, postgres: PostgresServer, assignments: Assignments
) -> None:
    topic = private_topic(broker, partitions=PARTITIONS)
    db_url = postgres.new_database()
    first_store, second_store = open_store(db_url), open_store(db_url)
    try:
        with RunningAggregator(broker, topic, first_store) as first:
            wait_until(lambda: len(assignments.of(first)) == PARTITIONS, timeout=60)
            with RunningAggregator(broker, topic, second_store) as second:
                wait_until(lambda: len(assignments.of(second)) > 0, timeout=60)
                wait_until(
                    lambda: len(assignments.of(first)) + len(assignments.of(second)) == PARTITIONS,
                    timeout=60,
                )
                given = assignments.revoked.get(first.thread.name, [])
                assert sorted(given) == sorted(assignments.of(second))
    finally:
        first_store.close()
        second_store.close()


def test_an_instance_fenced_by_its_static_id_ends_instead_of_spinning(
    broker: LocalBroker, postgres: PostgresServer, assignments: Assignments
) -> None:
    """Two instances started with one ``--instance-id``: the broker fences the older one,
    whose consumer can then never consume again. It must end (its supervisor restarts it),
    not log the fatal error forever while counting nothing."""
    topic = private_topic(broker, partitions=PARTITIONS)
    db_url = postgres.new_database()
    first_store, second_store = open_store(db_url), open_store(db_url)
    failures: list[BaseException | None] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)
    try:
        with RunningAggregator(broker, topic, first_store, instance_id="same") as first:
            wait_until(lambda: len(assignments.of(first)) == PARTITIONS, timeout=60)
            with RunningAggregator(broker, topic, second_store, instance_id="same"):
                wait_until(lambda: not first.thread.is_alive(), timeout=90)
        assert any(isinstance(f, ConsumerFatalError) for f in failures), failures
    finally:
        threading.excepthook = previous_hook
        first_store.close()
        second_store.close()
