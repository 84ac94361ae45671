"""Prometheus metrics of the aggregator: events by outcome, batch latency, consumer lag.

Events per second is ``rate(adstream_aggregator_events_total[1m])``; the lag comes
from librdkafka's statistics (``consumer_lag`` per assigned partition). The metrics port
also answers ``/ready``: 200 while every owned partition is counted, 503 naming the
partitions blocked on a dead letter that cannot be written.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

Readiness = Callable[[], tuple[bool, str]]
"""Whether the aggregator counts every partition it owns, and if not, which are blocked."""


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
        self.dead_letter_failures = Counter(
            "adstream_aggregator_dead_letter_failures",
            "Dead letters the broker did not acknowledge, by reason (too_large, not_authorized, "
            "unknown_topic, timeout, other); each blocks its partition until written",
            ["reason"],
            registry=self.registry,
        )
        self.dead_letters_by_reference = Counter(
            "adstream_aggregator_dead_letters_by_reference",
            "Dead letters written without value and headers (too large for the dead-letter "
            "topic); size and sha256 in their headers",
            registry=self.registry,
        )
        self.blocked_partitions = Gauge(
            "adstream_aggregator_blocked_partitions",
            "Partitions paused because a record in them could not be dead-lettered",
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


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the log."""


def serve_metrics(
    port: int, registry: CollectorRegistry, ready: Readiness, addr: str = "127.0.0.1"
) -> ThreadingWSGIServer:
    """Serve ``/metrics`` (any other path too, as prometheus-client does) and ``/ready``."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/ready":
            result: Iterable[bytes] = metrics_app(environ, start_response)
            return result
        ok, detail = ready()
        start_response(
            "200 OK" if ok else "503 Service Unavailable",
            [("Content-Type", "text/plain; charset=utf-8")],
        )
        return [detail.encode() + b"\n"]

    server = make_server(addr, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
