"""One real Kafka broker for the whole test session, on ports that do not clash.

The broker is the project's own local MSK-equivalent (`adstream.local`), started
in a temporary directory with a free block of ports, so tests can run beside a
developer's broker on 9092.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from adstream.local.broker import LocalBroker
from adstream.local.jars import ensure_kafka_jars
from adstream.local.layout import BrokerLayout
from adstream.local.postgres import PostgresServer, running_postgres
from tests.integration.kafka_helpers import free_base_port


@pytest.fixture(scope="session")
def kafka_dist():  # type: ignore[no-untyped-def]
    return ensure_kafka_jars(progress=print)


def start_broker(root: Path, dist, exclude: set[int] = frozenset()) -> LocalBroker:  # type: ignore[no-untyped-def,assignment]
    broker = LocalBroker(BrokerLayout.at(root), dist, base_port=free_base_port(exclude))
    broker.up(progress=logging.getLogger("adstream.tests").info)
    return broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory, kafka_dist) -> Iterator[LocalBroker]:  # type: ignore[no-untyped-def]
    running = start_broker(tmp_path_factory.mktemp("kafka"), kafka_dist)
    yield running
    running.down()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session; tests take fresh databases from it."""
    with running_postgres() as server:
        yield server
