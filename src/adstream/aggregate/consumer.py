"""The aggregator's consume loop: read a batch, count it, commit counts and offsets together.

Offsets live in the database (see ``store``); Kafka's committed offsets are only
updated afterwards, for lag monitoring and tooling. On assignment each partition
is positioned at the offset stored with the counts, so a restart after a crash
(or a rebalance) neither skips nor re-counts a message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    Message,
    TopicPartition,
)

from adstream.aggregate.config import AggregatorConfig
from adstream.aggregate.dead_letters import DeadLetters
from adstream.aggregate.decoding import UndecodableRecordError, tally_of
from adstream.aggregate.metrics import AggregatorMetrics
from adstream.aggregate.model import Batch, RetryableStoreError, StaleBatchError
from adstream.aggregate.store import SqlCountStore
from adstream.events import Clock, epoch_ms

log = logging.getLogger(__name__)


class Aggregator:
    def __init__(
        self,
        consumer: Consumer,
        store: SqlCountStore,
        dead_letters: DeadLetters,
        metrics: AggregatorMetrics,
        config: AggregatorConfig | None = None,
        clock: Clock = epoch_ms,
    ) -> None:
        self.consumer = consumer
        self.store = store
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.config = config or AggregatorConfig()
        self.clock = clock
        self._window = self.config.accepted_window
        self.stopping = threading.Event()

    def run(self, on_batch: Callable[[int], None] | None = None) -> None:
        """Consume until ``stop()``; every batch is committed before the next is read."""
        self.consumer.subscribe(
            [self.config.topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        try:
            while not self.stopping.is_set():
                messages = self.consumer.consume(self.config.batch_size, self.config.batch_wait_s)
                if messages:
                    self.process(messages)
                    if on_batch is not None:
                        on_batch(len(messages))
        finally:
            self.consumer.close()  # leaves the group: partitions move on at once

    def stop(self) -> None:
        self.stopping.set()

    def process(self, messages: list[Message]) -> None:
        batch = Batch()
        dead = 0
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", error)
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None
            assert partition is not None
            assert offset is not None
            batch.consumed(topic, partition, offset)
            try:
                batch.tallies.append(
                    tally_of(message.value(), self._received_ms(message), self._window)
                )
            except UndecodableRecordError as exc:
                self.dead_letters.send(message, str(exc))
                dead += 1
                log.warning("dead letter %s[%d]@%d: %s", topic, partition, offset, exc)
        if not batch.ranges:
            return
        with self.metrics.batch_seconds.time():
            if dead:
                self.dead_letters.flush()
            try:
                result = self.store.commit(batch)
            except StaleBatchError as exc:
                self.metrics.stale_batches.inc()
                log.warning("%s; re-reading from the stored offsets", exc)
                self._seek_to_stored(list(batch.ranges))
                return
            except RetryableStoreError as exc:
                log.warning("%s; re-reading the batch from the stored offsets", exc)
                self._seek_to_stored(list(batch.ranges))
                return
        self.metrics.events.labels("counted").inc(result.counted)
        self.metrics.events.labels("duplicate").inc(result.duplicates)
        self.metrics.events.labels("dead_letter").inc(dead)
        self.consumer.commit(
            offsets=[TopicPartition(t, p, r.next) for (t, p), r in batch.ranges.items()],
            asynchronous=True,
        )

    def _received_ms(self, message: Message) -> int:
        """When Kafka received the record (its timestamp), or now if it carries none."""
        kind, stamp = message.timestamp()
        return stamp if kind != TIMESTAMP_NOT_AVAILABLE and stamp > 0 else self.clock()

    def _stored_positions(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        stored = self.store.load_offsets(self.config.topic)
        return [
            TopicPartition(tp.topic, tp.partition, stored.get(tp.partition, OFFSET_BEGINNING))
            for tp in partitions
        ]

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        positions = self._stored_positions(partitions)
        log.info("assigned %s", [(tp.partition, tp.offset) for tp in positions])
        consumer.assign(positions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Nothing is pending here: each batch is committed before the next consume().
        consumer.unassign()

    def _seek_to_stored(self, keys: list[tuple[str, int]]) -> None:
        partitions = [TopicPartition(topic, partition) for topic, partition in keys]
        for position in self._stored_positions(partitions):
            self.consumer.seek(position)
