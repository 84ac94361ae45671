"""A real Prometheus (deploy/prometheus config and rules, started as `adstream monitor up`
starts it) scrapes a running `adstream serve` and an aggregator's metrics port: the targets
are up, a dead one is reported down, the key series hold what was sent, and the Grafana
dashboards' and alert rules' queries find their series, the broker's JMX exporter's and the
node exporter's too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from adstream.aggregate.metrics import serve_metrics
from adstream.aggregate.store import SqlCountStore
from adstream.local.broker import LocalBroker
from adstream.local.grafana import DASHBOARDS
from adstream.local.monitor import LocalPrometheus, default_config_dir
from adstream.local.node_exporter import BINARY, LocalNodeExporter
from tests.integration.aggregate_helpers import (
    RECENT_MINUTE,
    PrivateTopic,
    RunningAggregator,
    admin_producer,
    event,
    send_event,
    wait_until,
)
from tests.support.metrics import broker_metrics, named_metrics
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

IMPRESSIONS = 12
AGGREGATED = 5


@contextmanager
def running_api(broker: LocalBroker, folder: Path) -> Iterator[str]:
    """`adstream serve` with two workers over mutual TLS, until `/readyz` answers 200."""
    port = free_port()
    config = broker.layout.client_properties("tls")
    command = [sys.executable, "-m", "adstream", "serve", "--kafka-config", str(config)]
    command += ["--port", str(port), "--workers", "2", "--db", f"sqlite:///{folder / 'api.db'}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=60)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def api_get(prometheus: LocalPrometheus, path: str, **params: str) -> Any:
    answer = httpx.get(f"{prometheus.url}/api/v1/{path}", params=params, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]


def health(prometheus: LocalPrometheus) -> dict[str, str]:
    """Each scraped target's health (``up``, ``down``, ``unknown`` before its first scrape)."""
    targets = api_get(prometheus, "targets")["activeTargets"]
    return {target["scrapeUrl"]: target["health"] for target in targets}


def value(prometheus: LocalPrometheus, query: str) -> float | None:
    """The query's single value, None while it has no sample."""
    result = api_get(prometheus, "query", query=query)["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


FAILURE_ONLY = {
    "adstream_delivery_failures_total",
    "adstream_aggregator_dead_letter_failures_total",
}
"""Labelled by reason: no series until the first failure."""
WITH_DATA = {
    "Requests by route and status",
    "Request latency p99",
    "Kafka ack latency (acks=all)",
    "Events acknowledged by Kafka",
    "Producer queue depth",
    "Broker round trip (p99, slowest worker)",
    "Requests in flight per broker",
    "Retries, errors and timeouts per broker",
    "Batch size",
    "Messages per batch",
    "Bytes in and out per broker",
    "Messages in per broker",
    "Under-replicated and offline partitions",
    "ISR shrinks and expands",
    "Request time p99 (produce, fetch)",
    "Partitions and leaders per broker",
    "Broker heap used",
    "Events by outcome",
    "Consumer lag per partition",
    "Batch commit latency (dead letters + DB transaction)",
    "Blocked partitions",
}
"""Panels that show data once the services have handled a few events."""


def check_dashboards(prometheus: LocalPrometheus) -> None:
    """Every dashboard query runs on the live server, names series it scraped, and the
    panels of a healthy system have data (rate() needs two scrapes in its window)."""
    live = set(api_get(prometheus, "label/__name__/values"))
    panels = [
        (panel["title"], target["expr"])
        for board in DASHBOARDS.values()
        for panel in board["panels"]
        for target in panel["targets"]
    ]
    for title, expr in panels:
        missing = (named_metrics(expr) | broker_metrics(expr)) - live - FAILURE_ONLY
        assert not missing, f"{title}: no series {missing} in the live Prometheus"
    alerts = yaml.safe_load((default_config_dir() / "alerts.yml").read_text())["groups"]
    for rule in (rule for group in alerts for rule in group["rules"]):
        missing = broker_metrics(rule["expr"]) - live
        assert not missing, f"{rule['alert']}: the brokers export no {missing}"

    def empty() -> set[str]:
        with_data = {
            title for title, expr in panels if api_get(prometheus, "query", query=expr)["result"]
        }
        return WITH_DATA - with_data

    wait_until(lambda: not empty(), 25, empty)


def test_prometheus_scrapes_the_api_and_the_aggregator(
    broker: LocalBroker, topic: PrivateTopic, store: SqlCountStore, tmp_path: Path
) -> None:
    with running_api(broker, tmp_path) as api, RunningAggregator(broker, topic, store) as agg:
        metrics_port = free_port()
        metrics = serve_metrics(metrics_port, agg.metrics.registry, agg.aggregator.readiness)
        prometheus = LocalPrometheus(tmp_path / "prometheus", free_port())
        node = LocalNodeExporter(tmp_path / "prometheus", free_port())
        try:
            # Fails rather than skips without it, like the promtool tests: system-deps installs it.
            assert node.up() is not None, f"{BINARY} not found: run scripts/system-deps.sh"
            for i in range(IMPRESSIONS):
                assert httpx.post(f"{api}/ads/P{i % 3}/impression").status_code == 200
            producer = admin_producer(broker)
            for i in range(AGGREGATED):
                send_event(producer, topic.topic, event(f"A{i}", RECENT_MINUTE))
            assert producer.flush(30) == 0
            wait_until(lambda: agg.counted("counted") == AGGREGATED)

            api_target = api.removeprefix("http://")
            nobody = f"127.0.0.1:{free_port()}"
            (kafka_target,) = broker.ports.metrics_targets()
            aggregator_target = f"127.0.0.1:{metrics_port}"
            prometheus.configure(
                [api_target, nobody], [aggregator_target], [kafka_target], [node.target]
            )
            prometheus.up()

            expected = {
                f"http://{kafka_target}/metrics": "up",
                f"http://{api_target}/metrics": "up",
                f"http://{nobody}/metrics": "down",
                f"http://127.0.0.1:{metrics_port}/metrics": "up",
                f"http://{node.target}/metrics": "up",
            }
            wait_until(lambda: health(prometheus) == expected, 25, lambda: health(prometheus))

            impressions = (
                'sum(adstream_http_requests_total{job="adstream-api",'
                'route="/ads/{adId}/impression",status="200"})'
            )
            wanted = {
                impressions: IMPRESSIONS,
                'sum(adstream_produce_ack_seconds_count{job="adstream-api"})': IMPRESSIONS,
                'sum(adstream_events_published_total{job="adstream-api"})': IMPRESSIONS,
                'adstream_aggregator_events_total{job="adstream-aggregator",outcome="counted"}': (
                    AGGREGATED
                ),
                'sum(up{job="adstream-api"})': 1,
            }

            def scraped() -> dict[str, float | None]:
                return {query: value(prometheus, query) for query in wanted}

            wait_until(lambda: scraped() == wanted, 25, scraped)
            rules = api_get(prometheus, "rules")["groups"]
            assert sum(len(group["rules"]) for group in rules) >= 9
            check_dashboards(prometheus)
            check_disk_alert(prometheus)
        finally:
            prometheus.down()
            node.down()
            metrics.shutdown()
            metrics.server_close()
    assert prometheus.running_pid() is None
    assert node.running_pid() is None


def check_disk_alert(prometheus: LocalPrometheus) -> None:
    """The node exporter's filesystems are scraped as job kafka-node, and KafkaDiskAlmostFull's
    expression runs on them (its result depends on this machine's disks, so only that it
    evaluates, on a non-empty ratio, is asserted)."""
    # The exporter skips overlay and pseudo filesystems: a host (or container) with no disk
    # filesystem mounted has no series to check, only the expression's evaluation.
    on_disk = any(line.split()[2] in DISK_FILESYSTEMS for line in MOUNTS.read_text().splitlines())
    series = "node_filesystem_avail_bytes" if on_disk else "node_load1"
    scraped = f'{series}{{job="kafka-node"}}'
    wait_until(lambda: bool(api_get(prometheus, "query", query=scraped)["result"]), 25)
    alerts = yaml.safe_load((default_config_dir() / "alerts.yml").read_text())["groups"]
    (expr,) = [
        rule["expr"]
        for group in alerts
        for rule in group["rules"]
        if rule.get("alert") == "KafkaDiskAlmostFull"
    ]
    assert isinstance(api_get(prometheus, "query", query=expr)["result"], list)
    ratio = expr.rsplit("<", 1)[0]
    if on_disk:
        assert api_get(prometheus, "query", query=ratio)["result"], ratio


MOUNTS = Path("/proc/mounts")
DISK_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs"})


def test_monitor_up_is_idempotent_and_down_stops_it(tmp_path: Path) -> None:
    """`adstream monitor` as a user runs it: a second `up` finds the running servers, one on
    another port is refused, `down` stops Prometheus and the node exporter."""
    root, port, node_port = tmp_path / "prometheus", str(free_port()), str(free_port())
    monitor = [sys.executable, "-m", "adstream", "monitor"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*monitor, *args, "--dir", str(root)], capture_output=True, text=True, timeout=60
        )

    first = run("up", "--port", port, "--node-port", node_port)
    try:
        assert first.returncode == 0, first.stderr
        assert "Node exporter running (pid " in first.stdout, first.stdout
        second = run("up", "--port", port)
        assert second.returncode == 0, second.stderr
        assert first.stdout.split("(pid ")[1:] == second.stdout.split("(pid ")[1:]
        state = run("status")  # the ports are read from the pid files
        assert state.returncode == 0
        assert f"127.0.0.1:{node_port}/metrics" in state.stdout, state.stdout
        assert httpx.get(f"http://127.0.0.1:{node_port}/metrics").status_code == 200
        elsewhere = run("up", "--port", str(free_port()))
        assert elsewhere.returncode == 1
        assert f"already running on port {port}" in elsewhere.stderr
    finally:
        stopped = run("down").stdout
        assert "Prometheus stopped" in stopped, stopped
        assert "Node exporter stopped" in stopped, stopped
    assert run("status").returncode == 1
    for stopped_port in (port, node_port):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{stopped_port}/metrics")


def test_up_again_reloads_changed_rules(tmp_path: Path) -> None:
    source = tmp_path / "deploy"
    shutil.copytree(default_config_dir(), source)
    prometheus = LocalPrometheus(tmp_path / "prometheus", free_port(), source)

    def rules() -> set[str]:
        groups = api_get(prometheus, "rules")["groups"]
        return {rule["name"] for group in groups for rule in group["rules"]}

    prometheus.configure([], [])
    first = prometheus.up()
    try:
        wait_until(lambda: "AdstreamTargetDown" in rules(), 10, rules)
        alerts = yaml.safe_load((source / "alerts.yml").read_text())
        extra = {"alert": "AdstreamExtra", "expr": "vector(1) == 0"}
        alerts["groups"].append({"name": "extra", "rules": [extra]})
        (source / "alerts.yml").write_text(yaml.safe_dump(alerts))
        prometheus.configure([], [])
        assert prometheus.up() == first
        wait_until(lambda: "AdstreamExtra" in rules(), 10, rules)
    finally:
        prometheus.down()
