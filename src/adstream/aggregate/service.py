"""The aggregator's composition root: settings in, a running consumer out."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from confluent_kafka import Producer

from adstream.aggregate.config import AggregatorConfig
from adstream.aggregate.consumer import Aggregator
from adstream.aggregate.dead_letters import DeadLetters, check_dead_letter_topic
from adstream.aggregate.metrics import AggregatorMetrics, serve_metrics
from adstream.aggregate.store import SqlCountStore
from adstream.aggregate.store_url import open_store, redact_db_url
from adstream.events.formats import FramedDecoder
from adstream.kafka.factory import make_admin, make_consumer, make_producer
from adstream.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)

DEAD_LETTER_TIMEOUT_MS = 20_000
SESSION_TIMEOUT_MS = 15_000


def build_aggregator(
    settings: KafkaSettings,
    store: SqlCountStore,
    config: AggregatorConfig,
    metrics: AggregatorMetrics | None = None,
    stats_interval_ms: int = 5000,
    framed: FramedDecoder | None = None,
) -> Aggregator:
    """Wire the consumer, the dead-letter producer and the metrics around ``store``.

    Raises ``DeadLetterTopicError`` before anything is consumed when the dead-letter topic
    is missing or this principal may not write it.
    """
    admin = make_admin(settings)
    check_dead_letter_topic(admin, settings, config.dead_letter_topic)
    metrics = metrics or AggregatorMetrics()
    overrides: dict[str, object] = {
        "auto.offset.reset": "earliest",  # a new group counts everything retained
        "isolation.level": "read_committed",
        # Catching up, one fetch brings a whole batch (5,000 events ~ 1 MB) per partition:
        # fewer round trips per transaction. Memory stays bounded by librdkafka's
        # queued.max.messages.kbytes (64 MiB).
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
        "statistics.interval.ms": stats_interval_ms,  # consumer lag for the metrics
        "stats_cb": metrics.on_stats,
        # A new or departing instance moves only the partitions that change owner; the
        # others keep being counted through the rebalance (README: "Failure settings").
        "partition.assignment.strategy": "cooperative-sticky",
        # A crashed instance's partitions move after 15 s, not librdkafka's 45 s; heartbeats
        # come from a background thread, so a slow batch does not expire the session
        # (max.poll.interval.ms bounds that). With --instance-id a restart inside this time
        # takes its partitions back without any rebalance.
        "session.timeout.ms": SESSION_TIMEOUT_MS,
    }
    if config.instance_id:
        overrides["group.instance.id"] = config.instance_id
    consumer = make_consumer(settings, config.group, overrides)

    def dead_letter_producer() -> Producer:
        # Settled (written or failed) within the flush timeout: no letter is left in limbo.
        return make_producer(settings, {"message.timeout.ms": DEAD_LETTER_TIMEOUT_MS})

    dead_letters = DeadLetters(
        dead_letter_producer(),
        config.dead_letter_topic,
        timeout_s=DEAD_LETTER_TIMEOUT_MS / 1000 + 10,
        new_producer=dead_letter_producer,
    )
    return Aggregator(consumer, store, dead_letters, metrics, config, framed=framed)


def run_aggregator(
    settings: KafkaSettings,
    db_url: str,
    config: AggregatorConfig,
    *,
    metrics_port: int | None = None,
    framed: FramedDecoder | None = None,
) -> None:
    """Run until SIGTERM/SIGINT; the batch in flight is committed before the exit."""
    store = open_store(db_url)
    try:
        aggregator = build_aggregator(settings, store, config, framed=framed)

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: finishing the current batch", signum)
            aggregator.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if metrics_port is not None:
            serve_metrics(metrics_port, aggregator.metrics.registry, aggregator.readiness)
        where = redact_db_url(db_url)
        log.info("aggregating %s into %s as group %s", config.topic, where, config.group)
        aggregator.run()
    finally:
        store.close()
