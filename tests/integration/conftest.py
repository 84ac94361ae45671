"""One real Kafka broker for the whole test session, on ports that do not clash.

The broker is the project's own local MSK-equivalent (`adstream.local`), started
in a temporary directory with a free block of ports, so tests can run beside a
developer's broker on 9092.
"""

from __future__ import annotations

import gc
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from bench.drills import CLUSTER_HEAP_MB

from adstream.aggregate.store import SqlCountStore
from adstream.aggregate.store_url import open_store
from adstream.local.broker import LocalBroker
from adstream.local.cluster import LocalCluster
from adstream.local.jars import KafkaDistribution, ensure_kafka_jars
from adstream.local.layout import BrokerLayout
from adstream.local.ports import port_free
from adstream.local.registry import LocalRegistry
from adstream.local.registry_dist import ensure_registry
from tests.integration.aggregate_helpers import PrivateTopic, private_topic
from tests.support.ports import free_base_port, free_port
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.redis import RedisServer, running_redis


def pytest_configure(config: pytest.Config) -> None:
    """A run stopped with SIGTERM (`timeout`, a cancelled CI job) still stops what it started.

    Brokers, PostgreSQL and Redis run as detached processes torn down by session fixtures;
    Python's default SIGTERM ends the interpreter without running them, leaving a JVM per
    stopped run behind. As a KeyboardInterrupt, pytest reports the interruption and runs
    every fixture's teardown.
    """
    signal.signal(signal.SIGTERM, _interrupted)


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


@pytest.fixture(scope="session")
def kafka_dist() -> KafkaDistribution:
    return ensure_kafka_jars(progress=print)


def start_broker(
    root: Path, dist: KafkaDistribution, exclude: set[int] | None = None
) -> LocalBroker:
    broker = LocalBroker(BrokerLayout.at(root), dist, base_port=free_base_port(exclude or set()))
    broker.up(progress=logging.getLogger("adstream.tests").info)
    return broker


@pytest.fixture(scope="session")
def broker(
    tmp_path_factory: pytest.TempPathFactory, kafka_dist: KafkaDistribution
) -> Iterator[LocalBroker]:
    running = start_broker(tmp_path_factory.mktemp("kafka"), kafka_dist)
    yield running
    gc.collect()  # destroy the tests' clients first: none then logs a refused connection at exit
    running.down()


ExtraBroker = Callable[[str], AbstractContextManager[LocalBroker]]


@pytest.fixture(scope="session")
def extra_broker(
    tmp_path_factory: pytest.TempPathFactory, kafka_dist: KafkaDistribution, broker: LocalBroker
) -> ExtraBroker:
    """Starts a second broker beside the session's, for tests that stop or restart one."""

    @contextmanager
    def start(name: str) -> Iterator[LocalBroker]:
        taken = set(broker.ports.all().values())
        extra = start_broker(tmp_path_factory.mktemp(name), kafka_dist, exclude=taken)
        try:
            yield extra
        finally:
            extra.down()

    return start


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """One real Apicurio Registry (in memory, BACKWARD) for the session, started only when a
    selected test asks for it (~4 s, ~250 MiB); tests use subjects of their own topics."""
    dist = ensure_registry(progress=print)
    port = free_port()
    while port >= 65535 or not port_free(port + 1):  # the registry takes PORT and PORT+1
        port = free_port()
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"), dist, port=port, heap_mb=256)
    registry.up(progress=logging.getLogger("adstream.tests").info)
    yield registry
    registry.down()


@pytest.fixture(scope="session")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, kafka_dist: KafkaDistribution
) -> Iterator[LocalCluster]:
    """A three-node cluster (RF 3, min.insync.replicas 2) for the failure drills: started
    once, and only in a session that selects a test using it (about 35 s)."""
    running = LocalCluster(
        BrokerLayout.at(tmp_path_factory.mktemp("cluster")),
        kafka_dist,
        base_port=free_base_port(nodes=3),
        heap_mb=CLUSTER_HEAP_MB,
    )
    try:
        running.up(progress=logging.getLogger("adstream.tests").info)
        yield running
    finally:
        gc.collect()
        running.down()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session; tests take fresh databases from it."""
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session (fails, not skips, if it is not installed)."""
    with running_redis() as server:
        yield server


@pytest.fixture
def topic(broker: LocalBroker) -> PrivateTopic:
    """A topic, dead-letter topic and group of the test's own, granted to the aggregator."""
    return private_topic(broker)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlCountStore]:
    """A fresh SQLite count store in the test's folder."""
    opened = open_store(f"sqlite:///{tmp_path / 'counts.db'}")
    yield opened
    opened.close()
