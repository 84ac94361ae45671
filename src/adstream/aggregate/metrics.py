"""Prometheus metrics of the aggregator: events by outcome, batch latency, consumer lag.

Events per second is ``rate(adstream_aggregator_events_total[1m])``; the lag comes
from librdkafka's statistics (``consumer_lag`` per assigned partition).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class AggregatorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.events = Counter(
            "adstream_aggregator_events",
            "Records consumed, by outcome (counted, duplicate, dead_letter)",
            ["outcome"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "adstream_aggregator_batch_seconds",
            "Time to commit one batch (dead letters + database transaction)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.lag = Gauge(
            "adstream_aggregator_consumer_lag",
            "Messages behind the partition's high watermark",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.stale_batches = Counter(
            "adstream_aggregator_stale_batches",
            "Batches refused because another consumer committed them first",
            registry=self.registry,
        )

    def on_stats(self, raw: str) -> None:
        """librdkafka ``stats_cb``: publish each assigned partition's consumer lag."""
        stats = json.loads(raw)
        for topic, info in stats.get("topics", {}).items():
            for partition, p in info.get("partitions", {}).items():
                lag = p.get("consumer_lag", -1)
                if partition != "-1" and lag >= 0:
                    self.lag.labels(topic, partition).set(lag)
