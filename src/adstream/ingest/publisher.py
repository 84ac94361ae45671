"""`AdEventPublisher`, the KafkaTemplate analog: `await publish(event)` resolves on the ack.

Delivery semantics: `publish` returns only after the broker acknowledged the record with
acks=all on an idempotent producer, so a returned `Delivery` is durable in the log.
Anything else raises a `PublishError`; the event may or may not be in Kafka then (a
timed-out record can have been written), so callers retry and consumers de-duplicate
by `eventId`. On a crash, events in the local queue are lost, but none of them were
acknowledged to a client.

Why a sync `Producer` plus one poll thread: the thread serves librdkafka's delivery
callbacks and hands each batch of results to the event loop in one
`call_soon_threadsafe`, which costs far less per event than a thread hop per message;
`AIOProducer` cannot send headers and delays messages at low rates.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from confluent_kafka import KafkaError, Message, Producer

from adstream.events import AdEvent, wire
from adstream.ingest.errors import (
    BrokerUnavailableError,
    DeliveryFailedError,
    DeliveryTimeoutError,
    PublisherClosedError,
    PublishError,
    QueueFullError,
)

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.05
_TIMEOUTS = frozenset({KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT})


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where Kafka stored the event."""

    topic: str
    partition: int
    offset: int


class PublishObserver(Protocol):
    """Receives publisher measurements (implemented by the Prometheus metrics)."""

    def acked(self, seconds: float) -> None: ...
    def failed(self, reason: str) -> None: ...
    def queue_depth(self, depth: int) -> None: ...


class NoObserver:
    def acked(self, seconds: float) -> None:
        pass

    def failed(self, reason: str) -> None:
        pass

    def queue_depth(self, depth: int) -> None:
        pass


def classify(error: KafkaError) -> PublishError:
    """Map a librdkafka delivery error to the typed error the API turns into a status."""
    code = error.code()
    if code in _TIMEOUTS:
        return DeliveryTimeoutError(f"not acknowledged in time: {error.str()}")
    if code == KafkaError._QUEUE_FULL:
        return QueueFullError(error.str())
    if error.retriable() or code < 0:
        return BrokerUnavailableError(error.str())
    return DeliveryFailedError(error.str())


_Pending = tuple[asyncio.Future[Delivery], float, str]
_Result = tuple[_Pending, KafkaError | None, Message]


class AdEventPublisher:
    """Publishes `AdEvent`s to one topic; `start()` inside the event loop, `close()` to flush."""

    def __init__(
        self, producer: Producer, topic: str, observer: PublishObserver | None = None
    ) -> None:
        self._producer = producer
        self.topic = topic
        self._observer = observer or NoObserver()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._results: list[_Result] = []

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Bind to the running loop and start the poll thread."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._thread.start()

    async def close(self, timeout: float = 10.0) -> int:
        """Refuse new events, wait up to `timeout` s for queued ones; return how many remain."""
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        remaining: int = await asyncio.to_thread(self._producer.flush, timeout)
        self._hand_over()
        if remaining:
            log.error("publisher closed with %d undelivered events", remaining)
        return remaining

    @property
    def queue_depth(self) -> int:
        return len(self._producer)

    # ---- publishing -----------------------------------------------------------------------
    def submit(self, event: AdEvent) -> asyncio.Future[Delivery]:
        """Enqueue `event`; the future resolves on the ack. Raises `QueueFullError` at once."""
        if self._closed or self._loop is None:
            raise PublisherClosedError("the publisher is not running")
        future: asyncio.Future[Delivery] = self._loop.create_future()
        pending: _Pending = (future, time.perf_counter(), str(event.event_id))
        try:
            self._producer.produce(
                self.topic,
                value=wire.value(event),
                key=wire.key(event),
                headers=wire.headers(event),
                on_delivery=partial(self._on_delivery, pending),
            )
        except BufferError as exc:
            self._observer.failed(QueueFullError.reason)
            log.warning("local queue full, event %s rejected", event.event_id)
            raise QueueFullError("the local producer queue is full") from exc
        return future

    async def publish(self, event: AdEvent) -> Delivery:
        """Send one event and wait for the broker's acknowledgement."""
        return await self.submit(event)

    async def publish_many(self, events: Sequence[AdEvent]) -> list[Delivery]:
        """Send events and wait for all acks; raises the first failure after all settled."""
        futures: list[asyncio.Future[Delivery]] = []
        try:
            for event in events:
                futures.append(self.submit(event))
        finally:
            results = await asyncio.gather(*futures, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        return results  # type: ignore[return-value]  # no exceptions left

    # ---- poll thread ------------------------------------------------------------------------
    def _on_delivery(self, pending: _Pending, error: KafkaError | None, message: Message) -> None:
        self._results.append((pending, error, message))

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(POLL_INTERVAL_S)
            self._hand_over()
            self._observer.queue_depth(len(self._producer))

    def _hand_over(self) -> None:
        """Pass the results collected by callbacks to the loop in one call."""
        if not self._results:
            return
        batch, self._results = self._results, []
        assert self._loop is not None
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._settle, batch)

    def _settle(self, batch: list[_Result]) -> None:
        now = time.perf_counter()
        for (future, started, event_id), error, message in batch:
            if error is None:
                self._observer.acked(now - started)
                if not future.done():
                    future.set_result(
                        Delivery(self.topic, message.partition() or 0, message.offset() or 0)
                    )
                continue
            failure = classify(error)
            self._observer.failed(failure.reason)
            log.error("event %s not delivered: %s (%s)", event_id, failure.reason, error.str())
            if not future.done():
                future.set_exception(failure)
