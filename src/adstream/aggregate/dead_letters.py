"""Records the aggregator cannot count go to ``ad-events.dlq`` with the reason in headers.

Contract (the consumer relies on it, see ``Aggregator.process``):

- ``flush`` returns only when every dead letter sent since the last flush is either
  acknowledged by the broker (``acks=all``) or known to have failed. Failures are raised
  together as one ``DeadLetterError`` naming each record's topic, partition and offset, so
  the caller commits nothing at or past those offsets: a record that cannot be dead-lettered
  is read again later, never skipped.
- A record too large for the dead-letter topic (over its ``max.message.bytes``, or the
  producer's ``message.max.bytes``) is retried on its own, then written *by reference*:
  no value and no original headers, but ``dlq.omitted``, ``dlq.original.size`` and
  ``dlq.original.sha256`` (of the value), with the original topic, partition and offset.
  The full record stays in the source topic until its retention ends.
- Dead letters are at least once: a crash (or a blocked partition, see the consumer)
  after the acknowledgement and before the batch is committed writes them again; the
  ``dlq.original.*`` headers identify the duplicates.

``check_dead_letter_topic`` runs at start: the topic must exist and be writable by this
principal, or the aggregator does not consume at all.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicCollection
from confluent_kafka.admin import AdminClient

from adstream.kafka.clustercheck import (
    Operation,
    authorization_result,
    classify_kafka_error,
    describe_identity,
)
from adstream.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)

REASON_HEADER = "dlq.reason"
OMITTED_HEADER = "dlq.omitted"
SIZE_HEADER = "dlq.original.size"
SHA256_HEADER = "dlq.original.sha256"
MAX_KEY_BY_REFERENCE = 1024  # a longer key is left out of a by-reference dead letter too

Headers = list[tuple[str, str | bytes | None]]
Coordinates = tuple[str, int, int]
"""(topic, partition, offset) of the original record."""


class FailureReason(StrEnum):
    """Why a dead letter was not written; a bounded set, used as a metric label."""

    TOO_LARGE = "too_large"
    NOT_AUTHORIZED = "not_authorized"
    UNKNOWN_TOPIC = "unknown_topic"
    TIMEOUT = "timeout"
    OTHER = "other"


_REASONS = {
    KafkaError.MSG_SIZE_TOO_LARGE: FailureReason.TOO_LARGE,
    KafkaError.RECORD_LIST_TOO_LARGE: FailureReason.TOO_LARGE,
    KafkaError.TOPIC_AUTHORIZATION_FAILED: FailureReason.NOT_AUTHORIZED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: FailureReason.NOT_AUTHORIZED,
    KafkaError.UNKNOWN_TOPIC_OR_PART: FailureReason.UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_TOPIC: FailureReason.UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION: FailureReason.UNKNOWN_TOPIC,
    KafkaError._MSG_TIMED_OUT: FailureReason.TIMEOUT,
    KafkaError._TIMED_OUT: FailureReason.TIMEOUT,
    KafkaError.REQUEST_TIMED_OUT: FailureReason.TIMEOUT,
}


@dataclass(frozen=True)
class DeadLetterFailure:
    """One record whose dead letter the broker did not acknowledge."""

    topic: str
    partition: int
    offset: int
    reason: FailureReason
    detail: str

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}: {self.reason} ({self.detail})"


class DeadLetterError(RuntimeError):
    """Dead letters were not acknowledged: nothing at or after their offsets may be committed."""

    def __init__(self, failures: list[DeadLetterFailure], by_reference: int = 0) -> None:
        super().__init__(
            f"{len(failures)} dead letters not written: " + "; ".join(map(str, failures[:5]))
        )
        self.failures = failures
        self.by_reference = by_reference  # others in the same flush, written by reference

    def first_per_partition(self) -> dict[tuple[str, int], DeadLetterFailure]:
        """The lowest failed offset of each partition: where committing must stop."""
        first: dict[tuple[str, int], DeadLetterFailure] = {}
        for failure in sorted(self.failures, key=lambda f: f.offset):
            first.setdefault((failure.topic, failure.partition), failure)
        return first


class DeadLetterTopicError(RuntimeError):
    """The dead-letter topic is missing or not writable: refuse to start."""


@dataclass(frozen=True)
class Flushed:
    written: int
    by_reference: int  # of them, written without value (too large), see the module docstring


@dataclass
class _Letter:
    message: Message
    reason: str
    by_reference: bool = False
    done: bool = False
    error: KafkaError | None = None

    @property
    def coordinates(self) -> Coordinates:
        topic, partition, offset = (
            self.message.topic(),
            self.message.partition(),
            self.message.offset(),
        )
        assert topic is not None
        assert partition is not None
        assert offset is not None
        return topic, partition, offset


@dataclass
class DeadLetters:
    producer: Producer
    topic: str
    timeout_s: float = 30.0
    """Longer than the producer's ``message.timeout.ms``, so every letter is settled by then."""
    new_producer: Callable[[], Producer] | None = None
    """Replaces the producer after a fatal (idempotence) error; without it such errors stay."""
    _letters: list[_Letter] = field(default_factory=list)

    def send(self, message: Message, reason: str) -> None:
        """Queue a dead letter for ``message``; ``flush`` says whether it was written."""
        letter = _Letter(message, reason)
        self._letters.append(letter)
        self._produce(letter)

    def flush(self) -> Flushed:
        """Wait for every dead letter sent since the last flush; raise if any is not written."""
        letters, self._letters = self._letters, []
        self._settle(letters)
        too_large = [x for x in letters if _reason(x.error) is FailureReason.TOO_LARGE]
        for letter in too_large:
            # Batched with others, a record may have been refused for their size: alone first.
            if len(letters) > 1:
                self._retry(letter, by_reference=False)
            if _reason(letter.error) is FailureReason.TOO_LARGE:
                self._retry(letter, by_reference=True)
                if letter.error is None:
                    log.warning(
                        "dead letter %s[%d]@%d written by reference: the record is too large "
                        "for %s",
                        *letter.coordinates,
                        self.topic,
                    )
        if any(x.error is not None and x.error.fatal() for x in letters):
            self._replace_producer()
        failures = [f for f in map(_failure, letters) if f is not None]
        by_reference = sum(x.by_reference and x.error is None for x in letters)
        if failures:
            raise DeadLetterError(failures, by_reference)
        return Flushed(len(letters), by_reference)

    def _retry(self, letter: _Letter, *, by_reference: bool) -> None:
        letter.by_reference, letter.done, letter.error = by_reference, False, None
        self._produce(letter)
        self._settle([letter])

    def _settle(self, letters: list[_Letter]) -> None:
        self.producer.flush(self.timeout_s)
        for letter in letters:
            if not letter.done:  # still queued: reported as a timeout, its callback ignored
                letter.done = True
                letter.error = KafkaError(KafkaError._MSG_TIMED_OUT, "not acknowledged in time")

    def _produce(self, letter: _Letter) -> None:
        def delivered(error: KafkaError | None, _message: Message) -> None:
            if not letter.done:
                letter.done, letter.error = True, error

        key, value, headers = self._record(letter)
        for attempt in (1, 2):
            try:
                self.producer.produce(
                    self.topic, key=key, value=value, headers=headers, on_delivery=delivered
                )
                return
            except BufferError:  # local queue full: drain it once, then give up
                if attempt == 2:
                    letter.done = True
                    letter.error = KafkaError(KafkaError._QUEUE_FULL, "producer queue full")
                    return
                self.producer.flush(self.timeout_s)
            except KafkaException as exc:  # refused before sending, e.g. over message.max.bytes
                letter.done, letter.error = True, exc.args[0]
                return

    def _record(self, letter: _Letter) -> tuple[bytes | None, bytes | None, Headers]:
        message = letter.message
        topic, partition, offset = letter.coordinates
        headers: Headers = [
            (REASON_HEADER, letter.reason.encode()[:1000]),
            ("dlq.original.topic", topic.encode()),
            ("dlq.original.partition", str(partition).encode()),
            ("dlq.original.offset", str(offset).encode()),
        ]
        key, value = message.key(), message.value()
        if not letter.by_reference:
            original = message.headers() or []
            if isinstance(original, dict):  # the typing allows it; confluent-kafka gives a list
                original = list(original.items())
            return key, value, [*original, *headers]
        omitted = ["value", "headers"]
        if key is not None and len(key) > MAX_KEY_BY_REFERENCE:
            omitted.append("key")
            key = None
        headers += [
            (OMITTED_HEADER, ",".join(omitted).encode()),
            (SIZE_HEADER, str(len(value or b"")).encode()),
            (SHA256_HEADER, hashlib.sha256(value or b"").hexdigest().encode()),
        ]
        return key, None, headers

    def close(self) -> None:
        """Release the producer. Every batch flushed its letters already: nothing is pending."""
        self.producer.flush(5)
        self.producer.close()

    def _replace_producer(self) -> None:
        if self.new_producer is None:
            return
        log.error("dead-letter producer failed fatally; creating a new one")
        self.producer = self.new_producer()


def _reason(error: KafkaError | None) -> FailureReason | None:
    return None if error is None else _REASONS.get(error.code(), FailureReason.OTHER)


def _failure(letter: _Letter) -> DeadLetterFailure | None:
    if letter.error is None:
        return None
    reason = _REASONS.get(letter.error.code(), FailureReason.OTHER)
    detail = f"{letter.error.name()}: {letter.error.str()}"
    return DeadLetterFailure(*letter.coordinates, reason, detail)


def check_dead_letter_topic(
    admin: AdminClient, settings: KafkaSettings, topic: str, timeout_s: float = 15.0
) -> None:
    """Raise ``DeadLetterTopicError`` unless ``topic`` exists and this principal may write it.

    Uses the broker's own answer (DescribeTopics with authorized operations), so ACLs and,
    where the broker reports them, IAM policies are both covered. A broker that does not
    report operations passes; the first dead letter then finds out.
    """
    principal = describe_identity(settings)
    futures = admin.describe_topics(
        TopicCollection([topic]), include_authorized_operations=True, request_timeout=timeout_s
    )
    try:
        description = futures[topic].result()
    except KafkaException as exc:
        result = classify_kafka_error(exc.args[0], settings.security, topic)
    else:
        result = authorization_result(
            topic, description.authorized_operations, {Operation.DESCRIBE, Operation.WRITE}
        )
    if not result.ok:
        raise DeadLetterTopicError(
            f"dead-letter topic {topic} is not usable by {principal}: {result.detail}. "
            f"Fix: {result.fix}"
        )
