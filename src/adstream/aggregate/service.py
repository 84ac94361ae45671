"""The aggregator's composition root: settings in, a running consumer out."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from prometheus_client import start_http_server

from adstream.aggregate.config import AggregatorConfig
from adstream.aggregate.consumer import Aggregator
from adstream.aggregate.dead_letters import DeadLetters
from adstream.aggregate.metrics import AggregatorMetrics
from adstream.aggregate.store import SqlCountStore
from adstream.aggregate.stores import open_store, redact_db_url
from adstream.kafka.factory import make_consumer, make_producer
from adstream.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)


def build_aggregator(
    settings: KafkaSettings,
    store: SqlCountStore,
    config: AggregatorConfig,
    metrics: AggregatorMetrics | None = None,
    stats_interval_ms: int = 5000,
) -> Aggregator:
    """Wire the consumer, the dead-letter producer and the metrics around ``store``."""
    metrics = metrics or AggregatorMetrics()
    overrides: dict[str, object] = {
        "auto.offset.reset": "earliest",  # a new group counts everything retained
        "isolation.level": "read_committed",
        "statistics.interval.ms": stats_interval_ms,  # consumer lag for the metrics
        "stats_cb": metrics.on_stats,
    }
    if config.instance_id:
        overrides["group.instance.id"] = config.instance_id
    consumer = make_consumer(settings, config.group, overrides)
    dead_letters = DeadLetters(make_producer(settings), config.dead_letter_topic)
    return Aggregator(consumer, store, dead_letters, metrics, config)


def run_aggregator(
    settings: KafkaSettings,
    db_url: str,
    config: AggregatorConfig,
    *,
    metrics_port: int | None = None,
) -> None:
    """Run until SIGTERM/SIGINT; the batch in flight is committed before the exit."""
    store = open_store(db_url)
    aggregator = build_aggregator(settings, store, config)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the current batch", signum)
        aggregator.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=aggregator.metrics.registry)
    where = redact_db_url(db_url)
    log.info("aggregating %s into %s as group %s", config.topic, where, config.group)
    try:
        aggregator.run()
    finally:
        store.close()
