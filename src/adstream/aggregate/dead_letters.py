"""Records the aggregator cannot count go to ``ad-events.dlq`` with the reason in headers.

They are acknowledged by the broker before the batch that skips them is committed,
so a bad record is never dropped silently: it is either in the dead-letter topic or
will be read again after a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Message, Producer

REASON_HEADER = "dlq.reason"


class DeadLetterError(RuntimeError):
    """The dead-letter topic did not acknowledge a record; the batch must not be committed."""


@dataclass
class DeadLetters:
    producer: Producer
    topic: str
    timeout_s: float = 30.0
    _errors: list[str] = field(default_factory=list)

    def send(self, message: Message, reason: str) -> None:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        headers = [
            *(message.headers() or []),
            (REASON_HEADER, reason.encode()[:1000]),
            ("dlq.original.topic", str(topic).encode()),
            ("dlq.original.partition", str(partition).encode()),
            ("dlq.original.offset", str(offset).encode()),
        ]
        self.producer.produce(
            self.topic,
            key=message.key(),
            value=message.value(),
            headers=headers,
            on_delivery=self._delivered,
        )

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._errors.append(str(error))

    def flush(self) -> None:
        """Wait for every dead letter sent so far; raise if any was not acknowledged."""
        left = self.producer.flush(self.timeout_s)
        errors, self._errors = self._errors, []
        if left or errors:
            raise DeadLetterError(
                f"{left} dead letters unacknowledged, errors: {'; '.join(errors) or 'timeout'}"
            )
