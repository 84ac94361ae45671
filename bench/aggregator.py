"""Aggregator throughput, exactly-once into SQLite and PostgreSQL, on this machine.

    .venv/bin/python -m bench.aggregator [--events 200000] [--batch-size 5000]

Starts its own local broker (a fresh state directory, free ports) and PostgreSQL
server, produces the events to ``ad-events`` first, then times the aggregator from
its first committed batch to the last: events/s counted, with offsets and event ids
committed in the same transaction. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from bench.run import machine, write_section
from confluent_kafka import Producer
from tests.support.ports import free_base_port
from tests.support.postgres import running_postgres

from adstream.aggregate.config import AggregatorConfig
from adstream.aggregate.service import build_aggregator
from adstream.aggregate.store_url import open_store
from adstream.events.ids import uuid7
from adstream.events.model import AdEvent, EventType
from adstream.events.wire import headers, key, value
from adstream.kafka.factory import base_config
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import local_kafka_settings
from adstream.local.jars import ensure_kafka_jars
from adstream.local.layout import BrokerLayout


def produce(broker: LocalBroker, count: int) -> None:
    config = dict(base_config(local_kafka_settings(broker.layout, broker.ports, "admin")))
    producer = Producer({**config, "linger.ms": 20, "compression.type": "lz4", "acks": "all"})
    now = time.time_ns() // 1_000_000
    for i in range(count):
        kind = EventType.CLICK if i % 50 == 0 else EventType.IMPRESSION
        event = AdEvent.create(
            event_id=uuid7(), ad_id=f"AD{i % 1000}", type=kind, timestamp=now - i % 600_000
        )
        while True:
            try:
                producer.produce(
                    "ad-events", key=key(event), value=value(event), headers=headers(event)
                )
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(120)


def run_once(
    broker: LocalBroker, db_url: str, events: int, batch_size: int
) -> tuple[float, int, int]:
    """(seconds, events timed, events counted in the database)."""
    store = open_store(db_url)
    config = AggregatorConfig(batch_size=batch_size, group="adstream-aggregator")
    settings = local_kafka_settings(broker.layout, broker.ports, "adstream-aggregator")
    aggregator = build_aggregator(settings, store, config)
    seen = {"n": 0, "first": 0.0, "last": 0.0, "first_n": 0}

    def on_batch(n: int) -> None:
        # Timed from the end of the first batch (after the group join) to the end of the last.
        if seen["n"] == 0:
            seen["first"], seen["first_n"] = time.perf_counter(), n
        seen["n"] += n
        seen["last"] = time.perf_counter()
        if seen["n"] >= events:
            aggregator.stop()

    thread = threading.Thread(target=aggregator.run, kwargs={"on_batch": on_batch})
    thread.start()
    thread.join(600)
    counted = sum(i + c for _, _, i, c in store.totals())
    store.close()
    return seen["last"] - seen["first"], int(seen["n"] - seen["first_n"]), counted


def rss_mib() -> float:
    """This process's resident memory now (the aggregator runs in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--write", type=Path, help="a Markdown file to put the table in")
    args = parser.parse_args()
    described = machine()
    with tempfile.TemporaryDirectory(prefix="adstream-bench-") as tmp:
        broker = LocalBroker(
            BrokerLayout.at(Path(tmp) / "kafka"), ensure_kafka_jars(), base_port=free_base_port()
        )
        broker.up()
        try:
            started = time.perf_counter()
            produce(broker, args.events)
            print(f"produced {args.events:,} events in {time.perf_counter() - started:.1f}s")
            rows = []
            with running_postgres() as postgres:
                for name, url, target in [
                    ("SQLite (WAL, synchronous=FULL)", f"sqlite:///{tmp}/counts.db", 100_000),
                    ("PostgreSQL 15 (local)", postgres.new_database(), 60_000),
                ]:
                    # A new consumer group per database: each run reads the topic from the start.
                    seconds, timed, counted = run_once(broker, url, args.events, args.batch_size)
                    assert counted == args.events, (counted, args.events)
                    if seconds <= 0:
                        raise SystemExit("too few events to time: use more than one batch")
                    rows.append((name, args.events, seconds, timed / seconds, target, rss_mib()))
        finally:
            broker.down()
    lines = [
        f"`python -m bench.aggregator` of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}:"
        f" {described}. Exactly once: counts, event ids and offsets in one transaction.",
        "",
        f"| store | events | seconds | events/s (batch {args.batch_size}) | of the target "
        "| RSS after (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {n:,} | {seconds:.2f} | {rate:,.0f} | {rate / target:.0%} of "
            f"{target:,} | {rss:.0f} |"
            for name, n, seconds, rate, target, rss in rows
        ),
    ]
    print("\n" + "\n".join(lines))
    if args.write:
        write_section(args.write, "bench.aggregator", "\n".join(lines))


if __name__ == "__main__":
    main()
