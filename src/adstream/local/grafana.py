"""Grafana dashboards as code: the API, producer, aggregator and Kafka broker dashboards,
written as JSON into ``deploy/grafana`` by `adstream monitor dashboards`.

Plain dictionaries in Grafana's dashboard JSON model (schema 39, Grafana 10/11) rather
than an SDK dependency: a dashboard here is a list of panels, each a few PromQL queries
with a unit. The tests check the committed JSON is what this module generates, that
every query names only metrics the code registers, and that a live Prometheus scraping
the running services accepts each query and has data for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 12
HEIGHT = 8


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""


def _panel(index: int, panel: Panel) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {
            "h": HEIGHT,
            "w": WIDTH,
            "x": (index % 2) * WIDTH,
            "y": (index // 2) * HEIGHT,
        },
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [
            {
                "datasource": DATASOURCE,
                "expr": query.expr,
                "legendFormat": query.legend,
                "refId": chr(ord("A") + n),
            }
            for n, query in enumerate(panel.queries)
        ],
    }


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    """A dashboard with a Prometheus data-source variable and `panels` two per row."""
    return {
        "uid": uid,
        "title": title,
        "tags": ["adstream"],
        "schemaVersion": SCHEMA_VERSION,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                }
            ]
        },
        "panels": [_panel(i, panel) for i, panel in enumerate(panels)],
    }


API = "adstream-api"
AGG = "adstream-aggregator"


def _p99(histogram: str, job: str, by: str = "") -> str:
    keys = f"{by}, le" if by else "le"
    return (
        f'histogram_quantile(0.99, sum by ({keys}) (rate({histogram}_bucket{{job="{job}"}}[1m])))'
    )


API_PANELS = [
    Panel(
        "Requests by route and status",
        "reqps",
        (
            Query(
                f'sum by (route, status) (rate(adstream_http_requests_total{{job="{API}"}}[1m]))',
                "{{route}} {{status}}",
            ),
        ),
    ),
    Panel(
        "Errors (status >= 400)",
        "reqps",
        (
            Query(
                f"sum by (status) "
                f'(rate(adstream_http_requests_total{{job="{API}",status=~"[45].."}}[1m]))',
                "{{status}}",
            ),
        ),
        "503: the producer queue is full or Kafka is unreachable.",
    ),
    Panel(
        "Request latency p99",
        "s",
        (Query(_p99("adstream_http_request_duration_seconds", API, "route"), "{{route}}"),),
    ),
    Panel(
        "Kafka ack latency (acks=all)",
        "s",
        (
            Query(_p99("adstream_produce_ack_seconds", API), "p99"),
            Query(
                f"histogram_quantile(0.5, sum by (le) "
                f'(rate(adstream_produce_ack_seconds_bucket{{job="{API}"}}[1m])))',
                "p50",
            ),
        ),
        "Alert AdstreamAckLatencyHigh: p99 over 100 ms for 5 minutes.",
    ),
    Panel(
        "Events acknowledged by Kafka",
        "ops",
        (Query(f'sum(rate(adstream_events_published_total{{job="{API}"}}[1m]))', "events/s"),),
    ),
    Panel(
        "Producer queue depth",
        "short",
        (Query(f'max(adstream_producer_queue_depth{{job="{API}"}})', "fullest worker"),),
        "The fullest live worker's queue: that worker answers 503 when it reaches 100 000.",
    ),
    Panel(
        "Delivery failures by reason",
        "ops",
        (
            Query(
                f'sum by (reason) (rate(adstream_delivery_failures_total{{job="{API}"}}[1m]))',
                "{{reason}}",
            ),
        ),
    ),
]

PRODUCER_PANELS = [
    Panel(
        "Broker round trip (p99, slowest worker)",
        "s",
        (
            Query(
                f'max by (broker) (adstream_producer_broker_rtt_seconds{{job="{API}",'
                'quantile="0.99"})',
                "broker {{broker}}",
            ),
        ),
        "From librdkafka's statistics (ADSTREAM_API_STATS_INTERVAL_MS): a broker whose round "
        "trip grows explains a slow ack before the request latency shows it.",
    ),
    Panel(
        "Requests in flight per broker",
        "short",
        (
            Query(
                f'sum by (broker) (adstream_producer_inflight_requests{{job="{API}"}})',
                "broker {{broker}}",
            ),
        ),
    ),
    Panel(
        "Retries, errors and timeouts per broker",
        "ops",
        tuple(
            Query(
                f'sum by (broker) (rate(adstream_producer_{name}_total{{job="{API}"}}[1m]))',
                f"{name.replace('_', ' ')} {{{{broker}}}}",
            )
            for name in ("retries", "request_errors", "request_timeouts")
        ),
        "Retries follow leader changes and timeouts; errors that persist end as 503s.",
    ),
    Panel(
        "Batch size",
        "bytes",
        tuple(
            Query(
                f'max by (topic) (adstream_producer_batch_size_bytes{{job="{API}",'
                f'quantile="{q}"}})',
                f"{{{{topic}}}} p{label}",
            )
            for q, label in (("0.5", "50"), ("0.99", "99"))
        ),
    ),
    Panel(
        "Messages per batch",
        "short",
        tuple(
            Query(
                f'max by (topic) (adstream_producer_batch_messages{{job="{API}",quantile="{q}"}})',
                f"{{{{topic}}}} p{label}",
            )
            for q, label in (("0.5", "50"), ("0.99", "99"))
        ),
        "linger.ms (ADSTREAM_API_LINGER_MS) trades these against each request's wait.",
    ),
]

KAFKA = 'job=~"kafka-jmx|msk-jmx"'
"""The local brokers' JMX exporter and Amazon MSK's open monitoring: the same names."""


def _broker_rate(name: str) -> str:
    # topic="": the broker-wide meter, not one of the per-topic ones.
    return (
        "sum by (instance) (rate(kafka_server_BrokerTopicMetrics_Count"
        f'{{{KAFKA},name="{name}",topic=""}}[1m]))'
    )


def _replica_value(name: str) -> str:
    return f'sum by (instance) (kafka_server_ReplicaManager_Value{{{KAFKA},name="{name}"}})'


KAFKA_PANELS = [
    Panel(
        "Bytes in and out per broker",
        "Bps",
        (
            Query(_broker_rate("BytesInPerSec"), "in {{instance}}"),
            Query(_broker_rate("BytesOutPerSec"), "out {{instance}}"),
        ),
    ),
    Panel(
        "Messages in per broker",
        "ops",
        (Query(_broker_rate("MessagesInPerSec"), "{{instance}}"),),
    ),
    Panel(
        "Under-replicated and offline partitions",
        "short",
        (
            Query(_replica_value("UnderReplicatedPartitions"), "under-replicated {{instance}}"),
            Query(
                "max (kafka_controller_KafkaController_Value"
                f'{{{KAFKA},name="OfflinePartitionsCount"}})',
                "offline",
            ),
        ),
        "Alerts KafkaUnderReplicatedPartitions and KafkaOfflinePartitions.",
    ),
    Panel(
        "ISR shrinks and expands",
        "ops",
        tuple(
            Query(
                "sum by (instance) (rate(kafka_server_ReplicaManager_Count"
                f'{{{KAFKA},name="Isr{change}PerSec"}}[5m]))',
                f"{change.lower()} {{{{instance}}}}",
            )
            for change in ("Shrinks", "Expands")
        ),
        "A follower falling out of sync and back: steady churn means a slow or flapping broker.",
    ),
    Panel(
        "Request time p99 (produce, fetch)",
        "ms",
        (
            Query(
                "max by (instance, request) (kafka_network_RequestMetrics_99thPercentile"
                f'{{{KAFKA},name="TotalTimeMs",request=~"Produce|FetchConsumer|FetchFollower"}})',
                "{{request}} {{instance}}",
            ),
        ),
        "Produce includes waiting for the in-sync replicas (acks=all).",
    ),
    Panel(
        "Partitions and leaders per broker",
        "short",
        (
            Query(_replica_value("PartitionCount"), "partitions {{instance}}"),
            Query(_replica_value("LeaderCount"), "leaders {{instance}}"),
        ),
    ),
    Panel(
        "Broker heap used",
        "bytes",
        (
            Query(
                f"sum by (instance) (java_lang_Memory_HeapMemoryUsage_used{{{KAFKA}}})",
                "{{instance}}",
            ),
        ),
    ),
]

AGGREGATOR_PANELS = [
    Panel(
        "Events by outcome",
        "ops",
        (
            Query(
                f'sum by (outcome) (rate(adstream_aggregator_events_total{{job="{AGG}"}}[1m]))',
                "{{outcome}}",
            ),
        ),
    ),
    Panel(
        "Consumer lag per partition",
        "short",
        (
            Query(
                f'sum by (topic, partition) (adstream_aggregator_consumer_lag{{job="{AGG}"}})',
                "{{topic}}/{{partition}}",
            ),
        ),
    ),
    Panel(
        "Batch commit latency (dead letters + DB transaction)",
        "s",
        (
            Query(_p99("adstream_aggregator_batch_seconds", AGG), "p99"),
            Query(
                f'sum(rate(adstream_aggregator_batch_seconds_sum{{job="{AGG}"}}[1m])) / '
                f'sum(rate(adstream_aggregator_batch_seconds_count{{job="{AGG}"}}[1m]))',
                "mean",
            ),
        ),
    ),
    Panel(
        "Blocked partitions",
        "short",
        (Query(f'sum(adstream_aggregator_blocked_partitions{{job="{AGG}"}})', "blocked"),),
        "Paused on a dead letter that could not be written; /ready names them.",
    ),
    Panel(
        "Dead-letter failures and stale batches",
        "ops",
        (
            Query(
                "sum by (reason) "
                f'(rate(adstream_aggregator_dead_letter_failures_total{{job="{AGG}"}}[5m]))',
                "dead letter not written: {{reason}}",
            ),
            Query(
                f'sum(rate(adstream_aggregator_stale_batches_total{{job="{AGG}"}}[5m]))',
                "stale batches",
            ),
            Query(
                "sum(rate("
                f'adstream_aggregator_dead_letters_by_reference_total{{job="{AGG}"}}[5m]))',
                "dead letters by reference",
            ),
        ),
    ),
]

DASHBOARDS = {
    "adstream-api.json": dashboard("adstream-api", "adstream: ingest API", API_PANELS),
    "adstream-producer.json": dashboard(
        "adstream-producer", "adstream: Kafka producer (librdkafka)", PRODUCER_PANELS
    ),
    "kafka-brokers.json": dashboard("adstream-kafka", "adstream: Kafka brokers", KAFKA_PANELS),
    "adstream-aggregator.json": dashboard(
        "adstream-aggregator", "adstream: aggregator", AGGREGATOR_PANELS
    ),
}


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def write_dashboards(folder: Path) -> list[Path]:
    """Write every dashboard into `folder` (deploy/grafana); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, board in DASHBOARDS.items():
        path = folder / name
        path.write_text(render(board))
        written.append(path)
    return written
