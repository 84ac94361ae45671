"""The aggregator's failure paths on the real broker: the dead-letter topic and stale batches.

The rule under test everywhere: a record is counted, or dead-lettered, or read again later;
it is never skipped, and one partition's trouble does not stop the others.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Message, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from adstream.aggregate.dead_letters import (
    OMITTED_HEADER,
    SHA256_HEADER,
    SIZE_HEADER,
    DeadLetterError,
    DeadLetterFailure,
    DeadLetters,
    DeadLetterTopicError,
    FailureReason,
    Flushed,
    check_dead_letter_topic,
)
from adstream.aggregate.metrics import serve_metrics
from adstream.aggregate.model import Batch, CommitResult, StaleBatchError, minute_of
from adstream.aggregate.service import build_aggregator
from adstream.aggregate.sqlite_store import SqliteCountStore
from adstream.aggregate.store import SqlCountStore
from adstream.events.model import AdEvent
from adstream.events.wire import headers, key, value
from adstream.kafka.factory import make_admin
from adstream.local.broker import LocalBroker
from tests.integration.aggregate_helpers import (
    AGGREGATOR,
    RECENT_MINUTE,
    PrivateTopic,
    RunningAggregator,
    admin_producer,
    aggregate_command,
    aggregator_settings,
    event,
    private_topic,
    wait_until,
)
from tests.integration.kafka_helpers import admin_consumer, allow, read_all
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

T0 = RECENT_MINUTE
FAST_RETRY = {"blocked_retry_s": 0.2, "blocked_retry_max_s": 1.0}


# ---- helpers ------------------------------------------------------------------------------


class Sent:
    """Events produced to chosen partitions, and the totals they must add up to."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer, self.topic = producer, topic
        self.counts: Counter[tuple[str, int]] = Counter()

    def good(self, partition: int, ad_id: str, n: int = 1) -> list[AdEvent]:
        events = [event(ad_id, T0 + i) for i in range(n)]
        for e in events:
            self.producer.produce(
                self.topic, key=key(e), value=value(e), headers=headers(e), partition=partition
            )
            self.counts[(ad_id, minute_of(e.timestamp))] += 1
        return events

    def bad(self, partition: int, body: bytes) -> int:
        """Produce a record that is not an ad event; returns its offset."""
        offsets: list[int] = []

        def delivered(error: object, message: Message) -> None:
            assert error is None, error
            offsets.append(int(message.offset() or 0))

        self.producer.produce(self.topic, value=body, partition=partition, on_delivery=delivered)
        assert self.producer.flush(20) == 0
        return offsets[0]

    def flush(self) -> None:
        assert self.producer.flush(20) == 0

    def totals(self, exclude: frozenset[str] = frozenset()) -> list[tuple[str, int, int, int]]:
        return sorted((ad, m, n, 0) for (ad, m), n in self.counts.items() if ad not in exclude)


def _dead_letter_acls(topic: PrivateTopic, op: AclOperation) -> AclBindingFilter:
    return AclBindingFilter(
        ResourceType.TOPIC,
        topic.dead_letters,
        ResourcePatternType.LITERAL,
        f"User:{AGGREGATOR}",
        "*",
        op,
        AclPermissionType.ALLOW,
    )


def _writable(broker: LocalBroker, topic: PrivateTopic) -> bool:
    admin = make_admin(aggregator_settings(broker))
    try:
        check_dead_letter_topic(admin, aggregator_settings(broker), topic.dead_letters)
    except DeadLetterTopicError:
        return False
    return True


# ---- at start ----------------------------------------------------------------------------


def test_aggregate_refuses_to_start_without_its_dead_letter_topic(
    broker: LocalBroker, tmp_path: Path
) -> None:
    topic = private_topic(broker, dead_letters=False)
    command, env = aggregate_command(broker, topic, f"sqlite:///{tmp_path / 'counts.db'}")
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"dead-letter topic {topic.dead_letters} is not usable" in done.stderr
    assert "does not exist" in done.stderr
    assert "CN=adstream-aggregator" in done.stderr
    assert "aggregating" not in done.stderr  # failed before consuming


@pytest.mark.parametrize(
    ("granted", "expected"),
    [
        ((AclOperation.DESCRIBE,), "lacks WRITE"),
        ((), "not authorized"),
    ],
    ids=["describe-only", "nothing"],
)
def test_aggregator_refuses_to_start_when_it_may_not_write_its_dead_letter_topic(
    broker: LocalBroker,
    store: SqlCountStore,
    granted: tuple[AclOperation, ...],
    expected: str,
) -> None:
    topic = private_topic(broker, dead_letter_ops=granted)
    with pytest.raises(DeadLetterTopicError) as raised:
        build_aggregator(aggregator_settings(broker), store, topic.config())
    assert topic.dead_letters in str(raised.value)
    assert expected in str(raised.value)
    assert "CN=adstream-aggregator" in str(raised.value)


# ---- dead letters failing while running --------------------------------------------------


def test_partition_whose_dead_letter_is_refused_blocks_alone_and_resumes_when_allowed(
    broker: LocalBroker, store: SqlCountStore
) -> None:
    topic = private_topic(broker)
    sent = Sent(admin_producer(broker), topic.topic)
    sent.good(0, "AD0", 3)
    sent.good(1, "AD1", 3)
    sent.good(2, "AD2", 3)
    sent.flush()
    with RunningAggregator(broker, topic, store, **FAST_RETRY) as running:
        wait_until(lambda: running.counted("counted") == 9)
        admin = broker.admin()
        write = _dead_letter_acls(topic, AclOperation.WRITE)
        for future in admin.delete_acls([write]).values():
            future.result(30)
        wait_until(lambda: not _writable(broker, topic))

        bad_offset = sent.bad(1, b"not json")
        sent.good(1, "AD1-after", 2)  # behind the bad record: must wait for it
        sent.good(0, "AD0-later", 4)
        sent.good(2, "AD2-later", 4)
        sent.flush()
        metrics = running.metrics
        wait_until(lambda: metrics.blocked_partitions._value.get() == 1)
        wait_until(lambda: running.counted("counted") == 17)
        assert list(store.totals()) == sent.totals(exclude=frozenset({"AD1-after"}))
        assert store.load_offsets(topic.topic)[1] == bad_offset  # not past the bad record
        assert running.counted("dead_letter") == 0
        assert metrics.dead_letter_failures.labels("not_authorized")._value.get() >= 1
        ready, detail = running.aggregator.readiness()
        assert not ready
        assert f"{topic.topic}[1]@{bad_offset} (not_authorized)" in detail
        port = free_port()
        server = serve_metrics(port, metrics.registry, running.aggregator.readiness)
        try:
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5)
            assert answer.value.code == 503
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            assert b"adstream_aggregator_blocked_partitions 1.0" in body
        finally:
            server.shutdown()

        again = allow(AGGREGATOR, AclOperation.WRITE, ResourceType.TOPIC, topic.dead_letters)
        for future in admin.create_acls([again]).values():
            future.result(30)
        wait_until(lambda: metrics.blocked_partitions._value.get() == 0, timeout=60)
        wait_until(lambda: running.counted("counted") == 19)
        assert running.aggregator.readiness()[0]
    assert running.counted("dead_letter") == 1
    assert list(store.totals()) == sent.totals()
    letters = read_all(broker, topic.dead_letters, 1)
    assert [m.value() for m in letters] == [b"not json"]
    assert dict(letters[0].headers() or [])["dlq.original.offset"] == str(bad_offset).encode()
    assert store.load_offsets(topic.topic)[1] == bad_offset + 3


def test_record_too_large_for_the_dead_letter_topic_is_written_by_reference(
    broker: LocalBroker, store: SqlCountStore
) -> None:
    topic = private_topic(broker, dead_letter_config={"max.message.bytes": "2048"})
    sent = Sent(admin_producer(broker), topic.topic)
    huge = os.urandom(8000)  # not JSON, and incompressible
    sent.good(0, "AD0", 2)
    small_offset = sent.bad(2, b"small and bad")
    huge_offset = sent.bad(1, huge)
    sent.good(1, "AD1", 2)
    sent.good(2, "AD2", 2)
    sent.flush()
    with RunningAggregator(broker, topic, store, **FAST_RETRY) as running:
        wait_until(lambda: running.counted("counted") == 6 and running.counted("dead_letter") == 2)
        assert running.metrics.blocked_partitions._value.get() == 0
        assert running.metrics.dead_letters_by_reference._value.get() == 1
    assert list(store.totals()) == sent.totals()
    letters = {_coordinates(m): m for m in read_all(broker, topic.dead_letters, 2)}
    assert letters[(2, small_offset)].value() == b"small and bad"  # kept whole: it fits
    by_reference = letters[(1, huge_offset)]
    assert by_reference.value() is None
    fields = dict(by_reference.headers() or [])
    assert fields[OMITTED_HEADER] == b"value,headers"
    assert fields[SIZE_HEADER] == b"8000"
    assert fields[SHA256_HEADER] == hashlib.sha256(huge).hexdigest().encode()


def _coordinates(letter: Message) -> tuple[int, int]:
    fields = dict(letter.headers() or [])
    return int(fields["dlq.original.partition"]), int(fields["dlq.original.offset"])


# ---- process() through each abort path, with raising collaborators --------------------


class RefusingDeadLetters(DeadLetters):
    """Acknowledges nothing while ``refusing`` is set; then writes as usual."""

    refusing = True

    def flush(self) -> Flushed:
        if not self.refusing:
            return super().flush()
        letters, self._letters = self._letters, []
        failures = [
            DeadLetterFailure(
                str(x.message.topic()),
                int(x.message.partition() or 0),
                int(x.message.offset() or 0),
                FailureReason.OTHER,
                "refused by the test",
            )
            for x in letters
        ]
        raise DeadLetterError(failures)


def test_dead_letter_error_commits_nothing_at_or_after_the_record(
    broker: LocalBroker, store: SqlCountStore
) -> None:
    topic = private_topic(broker)
    sent = Sent(admin_producer(broker), topic.topic)
    sent.good(0, "AD0", 2)
    bad_offset = sent.bad(2, b"[]")
    sent.good(2, "AD2-after", 3)
    sent.good(1, "AD1", 2)
    sent.flush()
    running = RunningAggregator(broker, topic, store, **FAST_RETRY)
    real = running.aggregator.dead_letters
    refusing = RefusingDeadLetters(real.producer, real.topic, real.timeout_s)
    running.aggregator.dead_letters = refusing
    with running:
        wait_until(lambda: running.counted("counted") == 4)
        wait_until(lambda: running.metrics.dead_letter_failures.labels("other")._value.get() >= 2)
        assert list(store.totals()) == sent.totals(exclude=frozenset({"AD2-after"}))
        assert store.load_offsets(topic.topic).get(2, 0) == bad_offset
        refusing.refusing = False
        wait_until(lambda: running.counted("counted") == 7)
        assert running.counted("dead_letter") == 1
    assert list(store.totals()) == sent.totals()


class StaleStore(SqliteCountStore):
    """Refuses the first ``stale`` commits as if another consumer had committed them first."""

    stale = 1

    def commit(self, batch: Batch) -> CommitResult:
        if self.stale > 0:
            self.stale -= 1
            raise StaleBatchError("refused by the test")
        return super().commit(batch)


@pytest.fixture
def stale_store(tmp_path: Path) -> Iterator[StaleStore]:
    opened = StaleStore(tmp_path / "stale.db")
    opened.ensure_schema()
    yield opened
    opened.close()


def test_stale_batch_is_read_again_from_the_stored_offsets(
    broker: LocalBroker, stale_store: StaleStore
) -> None:
    topic = private_topic(broker)
    sent = Sent(admin_producer(broker), topic.topic)
    for p in range(3):
        sent.good(p, f"AD{p}", 5)
    sent.flush()
    with RunningAggregator(broker, topic, stale_store, batch_size=100) as running:
        wait_until(lambda: running.counted("counted") == 15)
        assert running.metrics.stale_batches._value.get() == 1
    assert list(stale_store.totals()) == sent.totals()


def test_stale_batch_commits_no_offsets_to_kafka(
    broker: LocalBroker, stale_store: StaleStore
) -> None:
    stale_store.stale = 1_000_000
    topic = private_topic(broker)
    sent = Sent(admin_producer(broker), topic.topic)
    for p in range(3):
        sent.good(p, f"AD{p}", 2)
    sent.flush()
    with RunningAggregator(broker, topic, stale_store) as running:
        # Re-read again and again: each refusal seeks back instead of moving on.
        wait_until(lambda: running.metrics.stale_batches._value.get() >= 3)
    reader = admin_consumer(broker, topic.group)
    try:
        committed = reader.committed([TopicPartition(topic.topic, p) for p in range(3)], 10)
    finally:
        reader.close()
    assert [tp.offset for tp in committed] == [-1001] * 3  # OFFSET_INVALID: nothing committed
    assert list(stale_store.totals()) == []
    assert running.counted("counted") == 0
