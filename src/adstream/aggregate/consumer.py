"""The aggregator's consume loop: read a batch, count it, commit counts and offsets together.

Offsets live in the database (see ``store``); Kafka's committed offsets are only
updated afterwards, for lag monitoring and tooling. On assignment each partition
is positioned at the offset stored with the counts, so a restart after a crash
(or a rebalance) neither skips nor re-counts a message. The order of one batch and
what a crash between its steps does: ``Aggregator.process``.

A record that cannot be dead-lettered (see ``dead_letters``) *blocks its partition*:
nothing at or after it is committed, the partition is paused and re-read from it after
a backoff, and every other partition goes on being counted. Blocked partitions are in
the ``adstream_aggregator_blocked_partitions`` metric, in ``/ready`` on the metrics port
and in an ERROR log line naming topic, partition, offset and reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    Message,
    TopicPartition,
)

from adstream.aggregate.config import AggregatorConfig
from adstream.aggregate.dead_letters import DeadLetterError, DeadLetterFailure, DeadLetters
from adstream.aggregate.decoding import UndecodableRecordError, tally_of
from adstream.aggregate.metrics import AggregatorMetrics
from adstream.aggregate.model import (
    Batch,
    CommitResult,
    ConsumerFatalError,
    RetryableStoreError,
    StaleBatchError,
    Tally,
)
from adstream.aggregate.store import SqlCountStore
from adstream.events import Clock, epoch_ms, wire
from adstream.events.formats import FramedDecoder, RegistryUnavailableError

log = logging.getLogger(__name__)


PartitionKey = tuple[str, int]


@dataclass
class BlockedPartition:
    """A partition held at ``offset``: the first record whose dead letter was not written."""

    failure: DeadLetterFailure
    attempts: int
    retry_at: float  # time.monotonic() at which it is resumed and the record read again
    paused: bool = True

    @property
    def offset(self) -> int:
        return self.failure.offset

    def __str__(self) -> str:
        return (
            f"{self.failure.topic}[{self.failure.partition}]@{self.offset} ({self.failure.reason})"
        )


class Aggregator:
    def __init__(
        self,
        consumer: Consumer,
        store: SqlCountStore,
        dead_letters: DeadLetters,
        metrics: AggregatorMetrics,
        config: AggregatorConfig | None = None,
        clock: Clock = epoch_ms,
        framed: FramedDecoder | None = None,
    ) -> None:
        self.consumer = consumer
        self.store = store
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.config = config or AggregatorConfig()
        self.clock = clock
        self._window = self.config.accepted_window
        self._framed = framed  # schema-registry records; see aggregate.decoding
        self.stopping = threading.Event()
        self.blocked: dict[PartitionKey, BlockedPartition] = {}
        self._blocked_view: tuple[str, ...] = ()  # read by the /ready thread

    def run(self, on_batch: Callable[[int], None] | None = None) -> None:
        """Consume until ``stop()``; every batch is committed before the next is read."""
        self.consumer.subscribe(
            [self.config.topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        try:
            while not self.stopping.is_set():
                self._resume_due()
                messages = self.consumer.consume(self.config.batch_size, self.config.batch_wait_s)
                if messages:
                    self.process(messages)
                    if on_batch is not None:
                        on_batch(len(messages))
        finally:
            self.consumer.close()  # leaves the group: partitions move on at once
            self.dead_letters.close()

    def stop(self) -> None:
        self.stopping.set()

    def readiness(self) -> tuple[bool, str]:
        """Ready while no owned partition is blocked; otherwise which are, and why."""
        view = self._blocked_view
        if view:
            return False, "blocked on dead letters that cannot be written: " + ", ".join(view)
        return True, "counting every assigned partition"

    def process(self, messages: list[Message]) -> None:
        """Count one batch exactly once. The steps, in this order:

        1. Decode each record. One that is not an ad event is sent to the dead-letter topic.
           Records of a blocked partition still in the fetch queue are left out. When the
           schema registry cannot be asked (`RegistryUnavailableError`), nothing of the
           batch is committed: its partitions are sought back to the stored offsets and
           read again after ``config.blocked_retry_s``.
        2. Dead letters acknowledged (``DeadLetters.flush``). Where one was not written,
           its partition is blocked: this batch keeps that partition's records *before*
           it only, and the partition is paused and sought back to it, to be read again
           after ``config.blocked_retry_s`` (doubling up to ``blocked_retry_max_s``).
           Other partitions are not affected.
        3. Counts, event ids and next offsets committed in one database transaction
           (``SqlCountStore.commit``). On ``StaleBatchError`` (another consumer committed
           these offsets first) or ``RetryableStoreError`` (lock timeout, deadlock: the
           transaction was rolled back) the partitions are sought back to the stored
           offsets and nothing is committed to Kafka.
        4. Kafka offsets committed, asynchronously, for lag tools only.

        A crash before 3 commits nothing: the batch is read again from the stored offsets
        and its dead letters are written again (the dead-letter topic is at least once).
        A crash between 3 and 4 loses nothing either: reading resumes from the offsets in
        the database, not Kafka's; only the reported lag is behind until the next batch.
        Blocked partitions are only in memory: after a restart the record is read again
        from the stored offset and its dead letter retried.
        """
        decoded: list[tuple[Message, Tally | None]] = []
        letters = 0
        for message in messages:  # 1
            if not self._countable(message):
                continue
            try:
                value, received_ms = message.value(), self._received_ms(message)
                tally = tally_of(value, received_ms, self._window, self._framed)
                decoded.append((message, tally))
            except RegistryUnavailableError as exc:  # the record may be fine: not a dead letter
                keys = {(str(m.topic()), int(m.partition() or 0)) for m in messages}
                log.warning("%s; re-reading the batch from the stored offsets", exc)
                self._seek_to_stored(sorted(keys))
                self.stopping.wait(self.config.blocked_retry_s)
                return
            except UndecodableRecordError as exc:
                self.dead_letters.send(message, str(exc))
                decoded.append((message, None))
                letters += 1
                log.warning(
                    "dead letter %s[%d]@%d from caller %s: %s",
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    wire.caller_of(message.headers()) or "unknown",
                    exc,
                )
        if not decoded:
            return
        with self.metrics.batch_seconds.time():
            stops = self._write_dead_letters() if letters else {}  # 2
            batch, dead = _batch_before(decoded, stops)
            result = CommitResult(0, 0)
            if batch.ranges:
                try:
                    result = self.store.commit(batch)  # 3
                except StaleBatchError as exc:
                    self.metrics.stale_batches.inc()
                    log.warning("%s; re-reading from the stored offsets", exc)
                    self._seek_to_stored(list(batch.ranges))
                    return
                except RetryableStoreError as exc:
                    log.warning("%s; re-reading the batch from the stored offsets", exc)
                    self._seek_to_stored(list(batch.ranges))
                    return
        self._clear_written(batch)
        self.metrics.events.labels("counted").inc(result.counted)
        self.metrics.events.labels("duplicate").inc(result.duplicates)
        self.metrics.events.labels("dead_letter").inc(dead)
        if batch.ranges:
            self.consumer.commit(  # 4
                offsets=[TopicPartition(t, p, r.next) for (t, p), r in batch.ranges.items()],
                asynchronous=True,
            )

    def _countable(self, message: Message) -> bool:
        error = message.error()
        if error is not None:
            if error.fatal() or error.code() == KafkaError._FATAL:  # the event has only the code
                raise ConsumerFatalError(error.str())
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error: %s", error)
            return False
        if not self.blocked:
            return True
        blocked = self.blocked.get((str(message.topic()), int(message.partition() or 0)))
        return blocked is None or not blocked.paused

    def _write_dead_letters(self) -> dict[PartitionKey, int]:
        """Step 2: the offset each partition must stop at because its dead letter failed."""
        try:
            flushed = self.dead_letters.flush()
        except DeadLetterError as exc:
            self.metrics.dead_letters_by_reference.inc(exc.by_reference)
            for failure in exc.failures:
                self.metrics.dead_letter_failures.labels(failure.reason.value).inc()
            first = exc.first_per_partition()
            for failure in first.values():
                self._block(failure)
            return {key: failure.offset for key, failure in first.items()}
        self.metrics.dead_letters_by_reference.inc(flushed.by_reference)
        return {}

    def _block(self, failure: DeadLetterFailure) -> None:
        key = (failure.topic, failure.partition)
        previous = self.blocked.get(key)
        attempts = previous.attempts + 1 if previous and previous.offset == failure.offset else 1
        delay = min(
            self.config.blocked_retry_s * 2 ** (attempts - 1), self.config.blocked_retry_max_s
        )
        blocked = BlockedPartition(failure, attempts, time.monotonic() + delay)
        self.blocked[key] = blocked
        self.consumer.pause([TopicPartition(*key)])
        self.consumer.seek(TopicPartition(*key, failure.offset))
        self._publish_blocked()
        log.error(
            "cannot dead-letter %s[%d]@%d: %s (%s). The partition is paused and committed only "
            "up to this offset; attempt %d, next in %.1fs. Other partitions are counted.",
            failure.topic,
            failure.partition,
            failure.offset,
            failure.reason.value,
            failure.detail,
            attempts,
            delay,
        )

    def _resume_due(self) -> None:
        now = time.monotonic()
        for key, blocked in self.blocked.items():
            if blocked.paused and blocked.retry_at <= now:
                blocked.paused = False
                self.consumer.resume([TopicPartition(*key)])
                log.info("re-reading %s to retry its dead letter", blocked)

    def _clear_written(self, batch: Batch) -> None:
        """Unblock each resumed partition this committed batch took past its held offset."""
        for key, blocked in list(self.blocked.items()):
            done = batch.ranges.get(key)
            if blocked.paused or done is None or done.next <= blocked.offset:
                continue
            del self.blocked[key]
            if done.first > blocked.offset:
                log.error(
                    "%s: offsets %d to %d were deleted from the topic (retention) before they "
                    "could be counted or dead-lettered",
                    blocked,
                    blocked.offset,
                    done.first - 1,
                )
            else:
                log.info("%s: dead letter written, partition counted again", blocked)
        self._publish_blocked()

    def _publish_blocked(self) -> None:
        self._blocked_view = tuple(str(b) for b in self.blocked.values())
        self.metrics.blocked_partitions.set(len(self.blocked))

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
        # The consumer rebalances cooperatively (``build_aggregator`` sets the assignor): only
        # the partitions that move are handed over; the others keep being counted.
        positions = self._stored_positions(partitions)
        log.info("assigned %s", [(tp.partition, tp.offset) for tp in positions])
        consumer.incremental_assign(positions)
        # A partition paused while blocked, revoked and given back, starts unpaused.
        consumer.resume([TopicPartition(tp.topic, tp.partition) for tp in positions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Nothing is pending here: each batch is committed before the next consume().
        # A blocked partition's new owner reads it from the stored offset and finds out.
        log.info("revoked %s", [tp.partition for tp in partitions])
        for tp in partitions:
            self.blocked.pop((tp.topic, tp.partition), None)
        self._publish_blocked()
        consumer.incremental_unassign(partitions)

    def _seek_to_stored(self, keys: list[PartitionKey]) -> None:
        partitions = [TopicPartition(topic, partition) for topic, partition in keys]
        for position in self._stored_positions(partitions):
            self.consumer.seek(position)


def _batch_before(
    decoded: list[tuple[Message, Tally | None]], stops: dict[PartitionKey, int]
) -> tuple[Batch, int]:
    """The batch to commit: each partition's records before its stop offset; dead letters."""
    batch, dead = Batch(), 0
    for message, tally in decoded:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None
        assert partition is not None
        assert offset is not None
        stop = stops.get((topic, partition))
        if stop is not None and offset >= stop:
            continue
        batch.consumed(topic, partition, offset)
        if tally is None:
            dead += 1
        else:
            batch.tallies.append(tally)
    return batch, dead
