"""Typed publish failures: each tells the HTTP layer whether a retry can help.

All of them mean "Kafka has not acknowledged this event". The API answers 503 with
`Retry-After` for the retryable ones and 500 for a permanent failure (e.g. the API's
principal may not write the topic), where retrying cannot help. A
`DeliveryTimeoutError` or `BrokerUnavailableError` event may still have reached the log
(librdkafka may have sent it before giving up), so a retry can duplicate it; the
stable `eventId` lets consumers drop the duplicate.
"""

from __future__ import annotations


class PublishError(RuntimeError):
    """Kafka did not acknowledge the event."""

    reason = "publish_failed"
    retryable = True

    @property
    def status(self) -> int:
        """The HTTP status that reports this failure."""
        return 503 if self.retryable else 500


class QueueFullError(PublishError):
    """The bounded local producer queue is full: back off and retry (backpressure)."""

    reason = "queue_full"


class DeliveryTimeoutError(PublishError):
    """No acknowledgement within the delivery timeout (broker slow or unreachable)."""

    reason = "delivery_timeout"


class BrokerUnavailableError(PublishError):
    """The brokers cannot be reached or refused the request for a transient reason."""

    reason = "broker_unavailable"


class PublisherClosedError(PublishError):
    """The publisher is shutting down and accepts no new events."""

    reason = "shutting_down"


class ProducerFatalError(PublishError):
    """librdkafka raised a fatal error: this producer can never send again.

    Retryable for the client (another worker or instance can take the event), but not
    for this process: `/healthz` fails from now on so the platform replaces it.
    """

    reason = "producer_fatal"


class DeliveryFailedError(PublishError):
    """A permanent failure (e.g. not authorized, record too large): retrying will not help."""

    reason = "delivery_failed"
    retryable = False


class EncodingFailedError(PublishError):
    """The event does not fit the registered schema (a bug, not a client's fault): not sent."""

    reason = "encoding_failed"
    retryable = False
