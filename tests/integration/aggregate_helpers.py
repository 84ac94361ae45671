"""A private topic, dead-letter topic and group per test, granted to the aggregator principal."""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Producer
from confluent_kafka.admin import AclOperation, NewTopic, ResourceType

from adstream.aggregate.config import AggregatorConfig
from adstream.aggregate.model import MINUTE_MS, minute_of
from adstream.aggregate.service import build_aggregator
from adstream.aggregate.store import SqlCountStore
from adstream.events import epoch_ms
from adstream.events.formats import FramedDecoder
from adstream.events.model import AdEvent, EventType
from adstream.events.wire import headers, key, value
from adstream.kafka.settings import KafkaSettings
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import local_kafka_settings
from tests.integration.kafka_helpers import allow, client_config

AGGREGATOR = "adstream-aggregator"
RECENT_MINUTE = minute_of(epoch_ms()) - 10 * MINUTE_MS
"""Event times for tests: recent, so inside the event-time window around the record time."""


@dataclass(frozen=True)
class PrivateTopic:
    topic: str
    dead_letters: str
    group: str

    def config(self, **changes: object) -> AggregatorConfig:
        base = AggregatorConfig(
            topic=self.topic, dead_letter_topic=self.dead_letters, group=self.group
        )
        return AggregatorConfig(**{**base.__dict__, **changes})


def private_topic(
    broker: LocalBroker,
    partitions: int = 3,
    *,
    dead_letters: bool = True,
    dead_letter_config: dict[str, str] | None = None,
    dead_letter_ops: tuple[AclOperation, ...] = (AclOperation.WRITE, AclOperation.DESCRIBE),
) -> PrivateTopic:
    """``dead_letters=False`` leaves the dead-letter topic uncreated (its ACLs still exist)."""
    name = f"agg-{uuid.uuid4().hex[:10]}"
    created = PrivateTopic(name, f"{name}.dlq", f"{name}-group")
    admin = broker.admin()
    new = [NewTopic(created.topic, partitions, 1)]
    if dead_letters:
        new.append(NewTopic(created.dead_letters, 1, 1, config=dead_letter_config or {}))
    for future in admin.create_topics(new).values():
        future.result(30)
    grants = [
        allow(AGGREGATOR, AclOperation.READ, ResourceType.TOPIC, created.topic),
        allow(AGGREGATOR, AclOperation.DESCRIBE, ResourceType.TOPIC, created.topic),
        *(
            allow(AGGREGATOR, op, ResourceType.TOPIC, created.dead_letters)
            for op in dead_letter_ops
        ),
        allow(AGGREGATOR, AclOperation.READ, ResourceType.GROUP, created.group),
    ]
    for future in admin.create_acls(grants).values():
        future.result(30)
    return created


def aggregator_settings(broker: LocalBroker) -> KafkaSettings:
    """The aggregator's own identity: mutual TLS as ``adstream-aggregator``."""
    return local_kafka_settings(broker.layout, broker.ports, AGGREGATOR)


def admin_producer(broker: LocalBroker) -> Producer:
    config = client_config(broker, principal="admin")
    return Producer({**config, "enable.idempotence": True, "acks": "all", "linger.ms": 5})


def event(ad_id: str, ts: int, *, click: bool = False, impressions: int = 1) -> AdEvent:
    from adstream.events.ids import uuid7

    kind = EventType.CLICK if click else EventType.IMPRESSION
    return AdEvent.create(
        event_id=uuid7(), ad_id=ad_id, type=kind, timestamp=ts, impressions=impressions
    )


def send_event(producer: Producer, topic: str, ad_event: AdEvent) -> None:
    producer.produce(topic, key=key(ad_event), value=value(ad_event), headers=headers(ad_event))


class RunningAggregator:
    """An in-process aggregator on a thread, as the ``aggregate`` command wires it."""

    def __init__(
        self,
        broker: LocalBroker,
        topic: PrivateTopic,
        store: SqlCountStore,
        framed: FramedDecoder | None = None,
        **config: object,
    ) -> None:
        settings = aggregator_settings(broker)
        self.aggregator = build_aggregator(
            settings, store, topic.config(**config), stats_interval_ms=500, framed=framed
        )
        self.metrics = self.aggregator.metrics
        self.thread = threading.Thread(target=self.aggregator.run, daemon=True)

    def __enter__(self) -> RunningAggregator:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.aggregator.stop()
        self.thread.join(30)

    def counted(self, outcome: str) -> float:
        return self.metrics.events.labels(outcome)._value.get()


def wait_until(
    condition: Callable[[], bool], timeout: float = 30.0, state: Callable[[], object] = str
) -> None:
    """Until `condition()`; on timeout the assertion shows `state()`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out; state: {state()}"
        time.sleep(0.1)


def aggregate_command(
    broker: LocalBroker, topic: PrivateTopic, db_url: str, *options: str
) -> tuple[list[str], dict[str, str]]:
    """`adstream aggregate` as a user runs it on the local broker (mutual TLS, the default
    path), for a private topic: the command line and its environment."""
    env = os.environ | {"ADSTREAM_LOCAL_KAFKA_DIR": str(broker.layout.root)}
    env.pop("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS", None)
    command = [
        sys.executable,
        "-m",
        "adstream",
        "aggregate",
        "--db",
        db_url,
        "--topic",
        topic.topic,
        "--dead-letter-topic",
        topic.dead_letters,
        "--group",
        topic.group,
        *options,
    ]
    return command, env
