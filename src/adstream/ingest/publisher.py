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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from adstream.events import AdEvent, wire
from adstream.events.formats import JSON_ENCODER, EventEncoder
from adstream.ingest.errors import (
    BrokerUnavailableError,
    DeliveryFailedError,
    DeliveryTimeoutError,
    EncodingFailedError,
    ProducerFatalError,
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

    def acked(self, count: int) -> None: ...
    def completed(self, seconds: float) -> None: ...
    def failed(self, reason: str) -> None: ...
    def queue_depth(self, depth: int) -> None: ...


class NoObserver:
    def acked(self, count: int) -> None:
        pass

    def completed(self, seconds: float) -> None:
        pass

    def failed(self, reason: str) -> None:
        pass

    def queue_depth(self, depth: int) -> None:
        pass


def classify(error: KafkaError) -> PublishError:
    """Map a librdkafka delivery error to the typed error the API turns into a status."""
    code = error.code()
    if error.fatal() or code == KafkaError._FATAL:
        return ProducerFatalError(f"the producer failed fatally: {error.str()}")
    if code in _TIMEOUTS:
        return DeliveryTimeoutError(f"not acknowledged in time: {error.str()}")
    if code == KafkaError._QUEUE_FULL:
        return QueueFullError(error.str())
    if error.retriable() or code < 0:
        return BrokerUnavailableError(error.str())
    return DeliveryFailedError(error.str())


class _Ticket:
    """One publish call's outstanding acks: the future resolves when `remaining` hits 0.

    A batch shares one ticket, so 1000 events cost one asyncio future and one delivery
    callback object, not 1000; `last` is the last acknowledged record, turned into the
    `Delivery` once, when the ticket resolves. The delivery callback (a `partial` holding
    the ticket) is made by the publish call and never stored on the ticket: a ticket that
    referenced its own callback would be a reference cycle, and every request would leave
    seven objects for the cyclic collector, whose pauses (tens of ms) were the single-event
    path's p99.
    """

    __slots__ = ("error", "future", "last", "remaining", "started")

    def __init__(self, future: asyncio.Future[Delivery], count: int) -> None:
        self.future = future
        self.remaining = count
        self.started = time.perf_counter()
        self.error: PublishError | None = None
        self.last: Message | None = None


_Result = tuple[_Ticket, KafkaError | None, Message]
_OnDelivery = Callable[[KafkaError | None, Message], None]


def _event_id(message: Message) -> str:
    try:
        return str(orjson.loads(message.value() or b"{}").get("eventId"))
    except orjson.JSONDecodeError:
        return "?"


class AdEventPublisher:
    """Publishes `AdEvent`s to one topic; `start()` inside the event loop, `close()` to flush."""

    def __init__(
        self,
        producer: Producer,
        topic: str,
        observer: PublishObserver | None = None,
        on_fatal: Callable[[], None] | None = None,
        encoder: EventEncoder = JSON_ENCODER,
    ) -> None:
        self._producer = producer
        self.encoder = encoder
        self._value = encoder.value  # bound once: JSON stays `wire.value`, no extra hop
        self._headers = encoder.headers
        self.topic = topic
        self._observer = observer or NoObserver()
        self._on_fatal = on_fatal
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._results: list[_Result] = []
        self._in_flight = 0
        self.fatal_error: str | None = None

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
        try:
            remaining: int = await asyncio.to_thread(self._producer.flush, timeout)
        except KafkaException as exc:  # a fatal error surfacing now
            self.on_client_error(exc.args[0])
            remaining = len(self._producer)
        self._hand_over()
        if remaining:
            log.error("publisher closed with %d undelivered events", remaining)
        return remaining

    def on_client_error(self, error: KafkaError) -> None:
        """A client-level error (from `poll()` or `error_cb`): a fatal one ends this producer.

        After a fatal error librdkafka purges every queued event (each fails, so each
        waiting request gets its 503) and refuses new ones; this publisher then fails
        every publish at once and calls `on_fatal`, which replaces the process. Anything
        else (a broker down, a transport error) is transient: it shows up as delivery
        failures and in readiness, not here.
        """
        if not error.fatal() or self.fatal_error is not None:
            return
        self.fatal_error = error.str()
        log.critical("Kafka producer failed fatally, the process must be replaced: %s", error)
        if self._on_fatal is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_fatal)

    @property
    def queue_depth(self) -> int:
        """Events handed to the producer whose ack or failure has not been settled yet.

        Counted here rather than read from `len(producer)`: librdkafka's out-queue length
        also counts its own pending error and log events, which are not events of ours.
        """
        return self._in_flight

    # ---- publishing -----------------------------------------------------------------------
    def _ticket(self, count: int) -> _Ticket:
        if self._closed or self._loop is None:
            raise PublisherClosedError("the publisher is not running")
        if self.fatal_error is not None:
            self._observer.failed(ProducerFatalError.reason)
            raise ProducerFatalError(f"the producer failed fatally: {self.fatal_error}")
        return _Ticket(self._loop.create_future(), count)

    def _produce(self, event: AdEvent, on_delivery: _OnDelivery, caller: str | None) -> None:
        try:
            value = self._value(event)
        except ValueError as exc:  # a registry format's serializer refused the event
            self._observer.failed(EncodingFailedError.reason)
            raise EncodingFailedError(str(exc)) from exc
        try:
            self._producer.produce(
                self.topic,
                value=value,
                key=wire.key(event),
                headers=self._headers(event, caller),
                on_delivery=on_delivery,
            )
            self._in_flight += 1
        except BufferError as exc:
            self._observer.failed(QueueFullError.reason)
            log.warning("local queue full, event %s rejected", event.event_id)
            raise QueueFullError("the local producer queue is full") from exc
        except KafkaException as exc:  # refused before queueing, e.g. topic not authorized
            failure = classify(exc.args[0])
            self._observer.failed(failure.reason)
            log.error("event %s not sent: %s (%s)", event.event_id, failure.reason, exc)
            raise failure from exc

    async def publish(self, event: AdEvent, caller: str | None = None) -> Delivery:
        """Send one event (`caller`: its sender, a record header) and wait for the ack."""
        ticket = self._ticket(1)
        self._produce(event, partial(self._on_delivery, ticket), caller)
        return await ticket.future

    async def publish_many(self, events: Sequence[AdEvent], caller: str | None = None) -> int:
        """Send events and wait until all are acknowledged; raises the first failure.

        If producing fails mid-batch (queue full, topic refused), waits for the events
        already enqueued, then raises that error: the caller's answer is sent only once
        nothing is left in flight.
        """
        ticket = self._ticket(len(events))
        on_delivery = partial(self._on_delivery, ticket)
        for sent, event in enumerate(events):
            try:
                self._produce(event, on_delivery, caller)
            except PublishError as exc:  # nothing more can be queued: settle what was
                ticket.error = ticket.error or exc
                ticket.remaining -= len(events) - sent
                if ticket.remaining == 0:
                    raise
                break
        await ticket.future
        return len(events)

    # ---- poll thread ------------------------------------------------------------------------
    def _on_delivery(self, ticket: _Ticket, error: KafkaError | None, message: Message) -> None:
        self._results.append((ticket, error, message))

    def _poll_loop(self) -> None:
        """Serve callbacks until closed. This thread must never die: if it did, no request
        waiting for an ack would ever be answered."""
        while not self._stop.is_set():
            try:
                self._producer.poll(POLL_INTERVAL_S)
            except KafkaException as exc:  # librdkafka raises a fatal error from poll()
                self.on_client_error(exc.args[0])
            except Exception:
                log.exception("error in a delivery callback; polling goes on")
            self._hand_over()
            self._observer.queue_depth(self._in_flight)

    def _hand_over(self) -> None:
        """Pass the results collected by callbacks to the loop in one call."""
        if not self._results:
            return
        batch, self._results = self._results, []
        assert self._loop is not None
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._settle, batch)

    def _settle(self, batch: list[_Result]) -> None:
        """Runs in the loop: count acks, record failures, resolve finished tickets.

        Metrics are updated once per call and once per ticket, not per event, because
        multiprocess metric writes cost more than the rest of the path for a large batch.
        """
        now = time.perf_counter()
        acked = 0
        self._in_flight -= len(batch)
        for ticket, error, message in batch:
            if error is None:
                acked += 1
                ticket.last = message
            else:
                failure = classify(error)
                if self.fatal_error is not None:  # purged because the producer failed
                    failure = ProducerFatalError(f"the producer failed fatally: {self.fatal_error}")
                self._observer.failed(failure.reason)
                log.error(
                    "event %s not delivered: %s (%s)",
                    _event_id(message),
                    failure.reason,
                    error.str(),
                )
                ticket.error = ticket.error or failure
            ticket.remaining -= 1
            if ticket.remaining == 0 and not ticket.future.done():
                self._observer.completed(now - ticket.started)
                if ticket.error is not None:
                    ticket.future.set_exception(ticket.error)
                else:
                    assert ticket.last is not None
                    last = ticket.last
                    delivery = Delivery(self.topic, last.partition() or 0, last.offset() or 0)
                    ticket.future.set_result(delivery)
        if acked:
            self._observer.acked(acked)
