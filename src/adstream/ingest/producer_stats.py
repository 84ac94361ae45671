"""librdkafka's producer statistics as Prometheus metrics: broker round trip, requests in
flight, retries, errors, timeouts and batch sizes.

librdkafka emits a JSON document every ``statistics.interval.ms`` on the thread that polls
(the publisher's poll thread). These are the figures that explain a slow or failing ack
before the request metrics show it: a broker whose round trip grows, requests piling up
in flight, retries after a leader change, batches too small to be efficient.

Labels are bounded: a broker is its node id (bootstrap entries, id -1, are skipped) and a
topic is one the producer writes to. librdkafka's counters are cumulative per process, so
each is turned into increments of a Prometheus counter (a restart of a broker's handle,
where the figure drops, counts from zero again).
"""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

_US = 1_000_000
_QUANTILES = (("0.5", "p50"), ("0.99", "p99"))


class ProducerStats:
    """Metrics fed by the producer's ``stats_cb`` (`on_stats`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.rtt = Gauge(
            "adstream_producer_broker_rtt_seconds",
            "Produce request round trip to each broker over the last statistics window "
            "(the slowest live worker's)",
            ["broker", "quantile"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.in_flight = Gauge(
            "adstream_producer_inflight_requests",
            "Requests sent to each broker and awaiting its response (summed over workers)",
            ["broker"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.retries = Counter(
            "adstream_producer_retries",
            "Requests the producer sent to a broker again (after a timeout, a leader change...)",
            ["broker"],
            registry=registry,
        )
        self.request_errors = Counter(
            "adstream_producer_request_errors",
            "Requests to a broker that failed to be sent or answered with an error",
            ["broker"],
            registry=registry,
        )
        self.request_timeouts = Counter(
            "adstream_producer_request_timeouts",
            "Requests to a broker that timed out (request.timeout.ms)",
            ["broker"],
            registry=registry,
        )
        self.batch_bytes = Gauge(
            "adstream_producer_batch_size_bytes",
            "Size of the producer's batches over the last statistics window",
            ["topic", "quantile"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.batch_messages = Gauge(
            "adstream_producer_batch_messages",
            "Messages per producer batch over the last statistics window",
            ["topic", "quantile"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self._seen: dict[tuple[str, str], int] = {}

    def on_stats(self, raw: str) -> None:
        """librdkafka ``stats_cb``: publish the figures of one statistics document."""
        stats = json.loads(raw)
        for broker in stats.get("brokers", {}).values():
            node = broker.get("nodeid", -1)
            if isinstance(node, int) and node >= 0:
                self._broker(str(node), broker)
        for topic, info in stats.get("topics", {}).items():
            for quantile, field in _QUANTILES:
                self.batch_bytes.labels(topic, quantile).set(info["batchsize"][field])
                self.batch_messages.labels(topic, quantile).set(info["batchcnt"][field])

    def _broker(self, node: str, broker: dict[str, Any]) -> None:
        for quantile, field in _QUANTILES:
            self.rtt.labels(node, quantile).set(broker["rtt"][field] / _US)
        self.in_flight.labels(node).set(broker["waitresp_cnt"])
        for counter, field in (
            (self.retries, "txretries"),
            (self.request_errors, "txerrs"),
            (self.request_timeouts, "req_timeouts"),
        ):
            total = int(broker[field])
            last = self._seen.get((node, field), 0)
            self._seen[(node, field)] = total
            counter.labels(node).inc(total - last if total >= last else total)
