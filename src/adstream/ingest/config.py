"""API settings (`ADSTREAM_API_*`), separate from the Kafka connection settings."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from adstream.events import EventTimeWindow
from adstream.events.limits import DEFAULT_MAX_EVENT_AGE_MS, DEFAULT_MAX_EVENT_AHEAD_MS
from adstream.kafka.topics import AD_EVENTS_TOPIC

KAFKA_CONFIG_ENV = "ADSTREAM_KAFKA_CONFIG"
"""The Kafka settings file each server worker loads (set by `adstream serve`)."""
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client reads it when first imported: set it before any worker imports metrics."""


class ApiSettings(BaseSettings):
    """How the API publishes: topic, delivery timeout, local queue bound, batching delay."""

    model_config = SettingsConfigDict(env_prefix="ADSTREAM_API_", extra="forbid", frozen=True)

    topic: str = AD_EVENTS_TOPIC
    delivery_timeout_s: float = Field(default=10.0, gt=0, le=300)
    queue_max_messages: int = Field(default=100_000, ge=1, le=10_000_000)
    linger_ms: float = Field(
        default=1.0,
        ge=0,
        le=1000,
        description="how long the producer waits to batch: each request waits for its ack, "
        "so under closed-loop load every ms here costs throughput (2 ms: 14.7k req/s, 1 ms: "
        "19.5k req/s in bench/RESULTS.md)",
    )
    stats_interval_ms: int = Field(
        default=5000,
        ge=0,
        le=3_600_000,
        description="how often librdkafka reports broker round trips, retries and batch "
        "sizes for /metrics (0: never)",
    )
    shutdown_flush_s: float = Field(default=10.0, ge=0)
    retry_after_s: int = Field(default=1, ge=0)
    hot_path: bool = Field(
        default=True, description="serve the single-event routes without FastAPI's machinery"
    )
    max_event_age_s: int = Field(
        default=DEFAULT_MAX_EVENT_AGE_MS // 1000,
        ge=0,
        description="a batch entry's timestamp may be at most this old (else 422)",
    )
    max_event_ahead_s: int = Field(
        default=DEFAULT_MAX_EVENT_AHEAD_MS // 1000,
        ge=0,
        description="a batch entry's timestamp may be at most this far ahead (else 422)",
    )
    db_url: str | None = Field(
        default=None,
        repr=False,  # may hold a password
        description="count database for the stats routes (see adstream.api)",
    )

    @property
    def event_window(self) -> EventTimeWindow:
        return EventTimeWindow(self.max_event_age_s * 1000, self.max_event_ahead_s * 1000)

    def producer_overrides(self) -> dict[str, Any]:
        """librdkafka properties derived from these settings."""
        timeout_ms = int(self.delivery_timeout_s * 1000)
        return {
            "message.timeout.ms": timeout_ms,
            "request.timeout.ms": min(timeout_ms, 30_000),
            "queue.buffering.max.messages": self.queue_max_messages,
            "linger.ms": self.linger_ms,
            "statistics.interval.ms": self.stats_interval_ms,
        }
