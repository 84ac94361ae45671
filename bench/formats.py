"""Publish throughput per wire format (json, avro, jsonschema) in one run, on this machine.

    .venv/bin/python -m bench.formats [--events 200000] [--rounds 3]

Starts its own local broker and local schema registry (Apicurio, in memory), then for
each format produces the same events through the factory's producer (idempotent,
acks=all, mutual TLS as ``adstream-api``) with that format's encoder, as the API's
publisher does: events/s from the first produce to the last acknowledgement, and the
encoder's own cost per event (no Kafka). Formats alternate round by round so a burst of
load elsewhere on the machine does not favour one. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from tests.support.ports import free_base_port, free_port

from adstream.aggregate.decoding import tally_of
from adstream.events import AdEvent, EventTimeWindow, EventType, uuid7, wire
from adstream.events.formats import JSON_ENCODER, EventEncoder, EventFormat, FramedDecoder
from adstream.kafka.factory import make_producer
from adstream.kafka.schema_registry import RegistryDecoder, RegistryEncoder
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import local_kafka_settings
from adstream.local.jars import ensure_kafka_jars
from adstream.local.layout import BrokerLayout
from adstream.local.ports import port_free
from adstream.local.registry import LocalRegistry
from adstream.local.registry_dist import ensure_registry


def publish(
    broker: LocalBroker, topic: str, encoder: EventEncoder, events: Sequence[AdEvent]
) -> float:
    settings = local_kafka_settings(broker.layout, broker.ports, "admin")
    producer = make_producer(settings, {"linger.ms": 5})
    started = time.perf_counter()
    for event in events:
        value = encoder.value(event)
        while True:
            try:
                producer.produce(topic, value, wire.key(event), headers=encoder.headers(event))
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    assert producer.flush(120) == 0
    return len(events) / (time.perf_counter() - started)


def encode_us(encoder: EventEncoder, events: Sequence[AdEvent]) -> float:
    started = time.perf_counter()
    for event in events:
        encoder.value(event)
    return (time.perf_counter() - started) / len(events) * 1e6


def decode_us(values: Sequence[bytes], framed: FramedDecoder) -> float:
    """The aggregator's cost per record: decode and check (`tally_of`), no database."""
    window = EventTimeWindow(max_age_ms=2**40, max_ahead_ms=2**40)
    started = time.perf_counter()
    for value in values:
        tally_of(value, 1_790_000_000_000, window, framed)
    return (time.perf_counter() - started) / len(values) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    events = [
        AdEvent.create(
            event_id=uuid7(),
            ad_id=f"AD{i % 1000}",
            type=EventType.CLICK if i % 10 == 0 else EventType.IMPRESSION,
            timestamp=1_790_000_000_000 + i,
        )
        for i in range(args.events)
    ]
    with tempfile.TemporaryDirectory(prefix="adstream-bench-") as tmp:
        broker = LocalBroker(
            BrokerLayout.at(Path(tmp) / "kafka"), ensure_kafka_jars(), base_port=free_base_port()
        )
        port = free_port()
        while not port_free(port + 1):
            port = free_port()
        registry = LocalRegistry(Path(tmp) / "registry", ensure_registry(), port=port)
        broker.up()
        registry.up()
        try:
            admin = broker.admin()
            topics = {f: f"bench-{f.value}" for f in EventFormat}
            for future in admin.create_topics(
                [NewTopic(t, 6, 1) for t in topics.values()]
            ).values():
                future.result(30)
            client = SchemaRegistryClient({"url": registry.url})
            encoders: dict[EventFormat, EventEncoder] = {
                EventFormat.JSON: JSON_ENCODER,
                EventFormat.AVRO: RegistryEncoder(
                    client, EventFormat.AVRO, topics[EventFormat.AVRO]
                ),
                EventFormat.JSONSCHEMA: RegistryEncoder(
                    client, EventFormat.JSONSCHEMA, topics[EventFormat.JSONSCHEMA]
                ),
            }
            rates: dict[EventFormat, list[float]] = {f: [] for f in EventFormat}
            for _ in range(args.rounds):
                for fmt, encoder in encoders.items():
                    rates[fmt].append(publish(broker, topics[fmt], encoder, events))
            sample = events[:20_000]
            print(f"\n{args.events:,} events per run, {args.rounds} rounds, formats alternating\n")
            decoder = RegistryDecoder(client)
            print(
                "| format | publish events/s (median, min-max) | encode µs/event "
                "| aggregator decode µs/event | value bytes |"
            )
            print("|---|---:|---:|---:|---:|")
            for fmt, encoder in encoders.items():
                median = statistics.median(rates[fmt])
                low, high = min(rates[fmt]), max(rates[fmt])
                values = [encoder.value(e) for e in sample]
                print(
                    f"| {fmt.value} | {median:,.0f} ({low:,.0f}-{high:,.0f}) "
                    f"| {encode_us(encoder, sample):.1f} | {decode_us(values, decoder):.1f} "
                    f"| {len(values[1])} |"
                )
        finally:
            registry.down()
            broker.down()


if __name__ == "__main__":
    main()
