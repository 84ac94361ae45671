"""API settings (`ADSTREAM_API_*`), separate from the Kafka connection settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adstream.events import EventTimeWindow
from adstream.events.limits import DEFAULT_MAX_EVENT_AGE_MS, DEFAULT_MAX_EVENT_AHEAD_MS
from adstream.ingest.keys import KeyConfigError, KeyFile, KeyRing, check_pepper
from adstream.kafka.topics import AD_EVENTS_TOPIC

KAFKA_CONFIG_ENV = "ADSTREAM_KAFKA_CONFIG"
"""The Kafka settings file each server worker loads (set by `adstream serve`)."""
STATE_DIR_ENV = "ADSTREAM_API_STATE_DIR"
"""The directory the workers of one server share for rate limits and nonces (set by serve)."""
APP_FACTORY_ENV = "ADSTREAM_API_APP_FACTORY"
"""The ASGI app factory ("module:function") the RSGI front wraps in each worker."""
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client reads it when first imported: set it before any worker imports metrics."""


class ApiSettings(BaseSettings):
    """How the API publishes: topic, delivery timeout, local queue bound, batching delay."""

    model_config = SettingsConfigDict(env_prefix="ADSTREAM_API_", extra="forbid", frozen=True)

    topic: str = AD_EVENTS_TOPIC
    delivery_timeout_s: float = Field(default=10.0, gt=0, le=300)
    queue_max_messages: int = Field(default=100_000, ge=1, le=10_000_000)
    linger_ms: float = Field(
        default=0.5,
        ge=0,
        le=1000,
        description="how long the producer waits to batch: each request waits for its ack, "
        "so every ms here is latency each request pays (one ad, bench/RESULTS.md: 1 ms "
        "~27k req/s, 0.5 ms ~30.5k); under load batches still grow while requests are in "
        "flight",
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
    interface: Literal["rsgi", "asgi"] = Field(
        default="rsgi",
        description="how `adstream serve` runs the app under Granian: rsgi answers the hot "
        "routes without ASGI messages and bridges the rest to the FastAPI app "
        "(ingest/rsgi.py); asgi serves the FastAPI app as it is",
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

    auth: Literal["keys", "none"] = Field(
        default="none",
        description="keys: every ingest request needs an API key or a signed URL (set in "
        "the CDK profiles); none: anyone may send events (local development only: "
        "`adstream serve` refuses it on a non-loopback address)",
    )
    keys_file: Path = Field(
        default=Path(".adstream/api/keys.json"), description="the key file (`adstream keys`)"
    )
    keys_json: SecretStr | None = Field(
        default=None,
        description="the key file's JSON document itself (AWS: from Secrets Manager); "
        "wins over keys_file",
    )
    pepper: SecretStr | None = Field(
        default=None, description="the server secret keys are hashed with (AWS: Secrets Manager)"
    )
    pepper_file: Path = Field(
        default=Path(".adstream/api/pepper"),
        description="where the pepper is kept locally when ADSTREAM_API_PEPPER is not set",
    )
    state_dir: Path | None = Field(
        default=None,
        description="shared by one server's workers: token buckets and URL nonces "
        "(`adstream serve` makes a fresh one; default: a temporary directory per app)",
    )
    limits_url: SecretStr | None = Field(
        default=None,
        description="where rate limits and URL nonces live when they must be shared beyond "
        "one server: redis:// or rediss:// (TLS) of a Redis or Valkey (AWS: the stack's "
        "ElastiCache Serverless cache); unset: a SQLite file in state_dir, per server",
    )
    limits_cluster: bool = Field(
        default=False,
        description="the Redis/Valkey runs in cluster mode (ElastiCache Serverless does; "
        "set by the stack): use a cluster client that follows the slot map",
    )
    limits_username: str | None = Field(
        default=None, description="the Redis ACL user (AWS: from the cache user's secret)"
    )
    limits_password: SecretStr | None = Field(
        default=None, description="its password (AWS: from the cache user's secret)"
    )
    limits_password_file: Path | None = Field(
        default=None, description="a file holding the password, if limits_password is unset"
    )
    limits_ca_file: Path | None = Field(
        default=None,
        description="rediss://: the CA certificates (PEM) the server's must chain to; "
        "default: certifi's bundle (ElastiCache's certificates chain to the Amazon roots)",
    )
    limits_timeout_s: float = Field(
        default=0.5,
        gt=0,
        le=5,
        description="socket and connect timeout of each Redis call, generous (a busy event "
        "loop reads late; a round trip in a VPC takes about 1 ms); a request waits at most "
        "three times this before its 503",
    )
    limits_down_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="after a failed Redis call, answer 503 at once for this long (and say "
        "so in Retry-After) instead of letting every request wait out its timeout",
    )
    max_url_ttl_s: int = Field(
        default=3600,
        ge=1,
        le=24 * 3600,
        description="a signed URL may expire at most this far ahead; at most 24 h, the "
        "aggregator's de-duplication window, so a replay the API did not see is still "
        "dropped there",
    )

    @field_validator("limits_url")
    @classmethod
    def _redis_scheme(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(("redis://", "rediss://")):
            raise ValueError("ADSTREAM_API_LIMITS_URL must be a redis:// or rediss:// URL")
        return url

    def limits_credentials(self) -> tuple[str | None, str | None]:
        """The Redis user and password from the settings or the password file."""
        if self.limits_password is not None:
            password: str | None = self.limits_password.get_secret_value()
        elif self.limits_password_file is not None:
            password = self.limits_password_file.read_text().strip()
        else:
            password = None
        return self.limits_username, password

    @property
    def event_window(self) -> EventTimeWindow:
        return EventTimeWindow(self.max_event_age_s * 1000, self.max_event_ahead_s * 1000)

    def key_ring(self) -> KeyRing:
        """The keys of keys mode; `KeyConfigError` if they or the pepper cannot be read."""
        if self.pepper is not None:
            pepper = check_pepper(self.pepper.get_secret_value())
        elif self.pepper_file.exists():
            pepper = check_pepper(self.pepper_file.read_text().strip())
        else:
            raise KeyConfigError(
                f"ADSTREAM_API_AUTH=keys needs a pepper: set ADSTREAM_API_PEPPER or create "
                f"keys with `adstream keys create` (writes {self.pepper_file})"
            )
        if self.keys_json is not None:
            document = self.keys_json.get_secret_value()
            return KeyRing(pepper, KeyFile.parse(document, "ADSTREAM_API_KEYS_JSON"))
        return KeyRing.from_file(pepper, self.keys_file)

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
