"""librdkafka statistics documents become bounded Prometheus series."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CollectorRegistry

from adstream.ingest.producer_stats import ProducerStats


def _broker(node: int, retries: int, rtt_p99_us: int = 2500) -> dict[str, Any]:
    # The fields librdkafka's STATISTICS.md documents for a broker (a subset).
    return {
        "name": f"ssl://127.0.0.1:9094/{node}",
        "nodeid": node,
        "state": "UP",
        "waitresp_cnt": 3,
        "txretries": retries,
        "txerrs": 1,
        "req_timeouts": 0,
        "rtt": {"min": 100, "max": 9000, "avg": 800, "p50": 700, "p99": rtt_p99_us, "cnt": 40},
    }


def _document(retries: int) -> str:
    return json.dumps(
        {
            "name": "rdkafka#producer-1",
            "type": "producer",
            "brokers": {
                "ssl://127.0.0.1:9094/bootstrap": {**_broker(-1, 99), "nodeid": -1},
                "ssl://127.0.0.1:9094/1": _broker(1, retries),
            },
            "topics": {
                "ad-events": {
                    "topic": "ad-events",
                    "batchsize": {"avg": 900, "p50": 850, "p99": 4000},
                    "batchcnt": {"avg": 3, "p50": 2, "p99": 12},
                    "partitions": {},
                }
            },
        }
    )


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_broker_figures_are_exposed_by_node_id_in_seconds() -> None:
    registry = CollectorRegistry()
    ProducerStats(registry).on_stats(_document(retries=2))
    rtt = "adstream_producer_broker_rtt_seconds"
    assert _value(registry, rtt, broker="1", quantile="0.99") == 0.0025
    assert _value(registry, rtt, broker="1", quantile="0.5") == 0.0007
    assert _value(registry, "adstream_producer_inflight_requests", broker="1") == 3
    assert _value(registry, "adstream_producer_request_timeouts_total", broker="1") == 0
    batch = "adstream_producer_batch_size_bytes"
    assert _value(registry, batch, topic="ad-events", quantile="0.99") == 4000
    assert (
        _value(registry, "adstream_producer_batch_messages", topic="ad-events", quantile="0.5") == 2
    )


def test_bootstrap_entries_make_no_series() -> None:
    registry = CollectorRegistry()
    ProducerStats(registry).on_stats(_document(retries=2))
    exposed = {s.labels.get("broker") for m in registry.collect() for s in m.samples}
    assert "-1" not in exposed


def test_cumulative_librdkafka_counters_become_counter_increments() -> None:
    registry = CollectorRegistry()
    stats = ProducerStats(registry)
    retries = "adstream_producer_retries_total"
    stats.on_stats(_document(retries=2))
    stats.on_stats(_document(retries=5))
    assert _value(registry, retries, broker="1") == 5
    stats.on_stats(_document(retries=1))  # the broker's handle was re-created
    assert _value(registry, retries, broker="1") == 6
    assert _value(registry, "adstream_producer_request_errors_total", broker="1") == 1
