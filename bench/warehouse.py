"""Kafka Connect's Iceberg sink on this machine: events/s into the table, commit latency, RSS.

    .venv/bin/python -m bench.warehouse [--events 200000] [--commit-interval-ms 5000]

Starts its own local broker and Connect worker (fresh state directories, free ports),
produces the events to ``ad-events`` first, then starts the worker and times it from
"ready" (connector and task running) until the table's latest snapshot holds every event:
the rate at which a backlog becomes queryable, commits included. Commit latency is the
coordinator's own, from "initiated commit" to "completed commit" in the worker's log
(workers write and announce their files, the coordinator commits one snapshot). Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import tempfile
import time
from pathlib import Path

from bench.aggregator import produce
from tests.support.ports import free_base_port, free_port

from adstream.local.broker import LocalBroker
from adstream.local.connect import LocalConnect
from adstream.local.connect_config import ConnectLayout
from adstream.local.connect_jars import ensure_connect_jars
from adstream.local.jars import ensure_kafka_jars
from adstream.local.layout import BrokerLayout
from adstream.warehouse.layout import RAW_EVENTS_TABLE, WarehouseLayout
from adstream.warehouse.table import open_catalog

_LINE = re.compile(r"^\[(\S+ \S+)\] INFO Coordinator \S+ (initiated|completed) commit ([0-9a-f-]+)")


def committed_rows(warehouse: WarehouseLayout) -> int:
    table = open_catalog(warehouse).load_table(RAW_EVENTS_TABLE)
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get("total-records", 0))


def commit_latencies(log: Path) -> list[float]:
    """Seconds from each commit's start to its end, for commits that wrote to the table."""
    started: dict[str, dt.datetime] = {}
    done: list[float] = []
    text = log.read_text(errors="replace")
    wrote = set(re.findall(r"completed commit to table \S+, snapshot \d+, commit ID (\S+),", text))
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        at = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
        if match.group(2) == "initiated":
            started[match.group(3)] = at
        elif match.group(3) in started and match.group(3) in wrote:
            done.append((at - started[match.group(3)]).total_seconds())
    return done


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of `pid` in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--commit-interval-ms", type=int, default=5_000)
    parser.add_argument("--heap-mb", type=int, default=384)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="adstream-bench-wh-") as tmp:
        root = Path(tmp)
        broker = LocalBroker(
            BrokerLayout.at(root / "kafka"), ensure_kafka_jars(), base_port=free_base_port()
        )
        broker.up(progress=print)
        try:
            produce(broker, args.events)
            warehouse = WarehouseLayout.at(root / "warehouse")
            worker = LocalConnect(
                ConnectLayout.at(root / "connect"),
                ensure_connect_jars(progress=print),
                broker.layout,
                broker.ports,
                warehouse,
                rest_port=free_port(),
                heap_mb=args.heap_mb,
                commit_interval_ms=args.commit_interval_ms,
            )
            worker.up(progress=print)
            started = time.perf_counter()
            try:
                while committed_rows(warehouse) < args.events:
                    time.sleep(0.2)
                seconds = time.perf_counter() - started
                pid = worker.running_pid()
                assert pid is not None
                rss, peak = rss_mib(pid)
                latencies = commit_latencies(worker.layout.worker_log)
            finally:
                worker.down()
        finally:
            broker.down()
    print()
    print(
        "| events | commit interval | events/s into Iceberg | commits | commit latency "
        "median / max | worker RSS end / peak |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.events:,} | {args.commit_interval_ms / 1000:.0f} s "
        f"| {args.events / seconds:,.0f} ({seconds:.1f} s) | {len(latencies)} "
        f"| {statistics.median(latencies):.2f} s / {max(latencies):.2f} s "
        f"| {rss:.0f} / {peak:.0f} MiB (heap {args.heap_mb} MiB) |"
    )


if __name__ == "__main__":
    main()
