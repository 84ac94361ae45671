"""The Connect worker's files and the ACLs its principal gets agree with each other."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from adstream.kafka.desired_state import (
    Grant,
    PatternKind,
    default_state_file,
    load_desired_state,
)
from adstream.kafka.topics import AD_EVENTS_TOPIC, ICEBERG_CONNECT_GROUP, ICEBERG_CONTROL_TOPIC
from adstream.local.connect_config import (
    CONNECT_PRINCIPAL,
    ConnectLayout,
    connector_properties,
    rest_port_for,
    worker_properties,
)
from adstream.local.connect_jars import plugin_pom, worker_pom
from adstream.local.layout import PRINCIPALS, BrokerLayout, Listener, Ports
from adstream.warehouse.layout import CATALOG_NAME, RAW_EVENTS_TABLE, WarehouseLayout

POM_NS = "{http://maven.apache.org/POM/4.0.0}"


@pytest.fixture
def worker(tmp_path: Path) -> dict[str, str]:
    return worker_properties(
        ConnectLayout.at(tmp_path / "connect"),
        BrokerLayout.at(tmp_path / "kafka"),
        Ports(9092),
        "store-pw",
        tmp_path / "plugins",
        8083,
    )


@pytest.fixture
def connector(tmp_path: Path) -> dict[str, str]:
    return connector_properties(WarehouseLayout.at(tmp_path / "wh"), commit_interval_ms=1500)


def test_the_worker_and_its_sink_consumers_use_mutual_tls_with_their_own_certificate(
    worker: dict[str, str], tmp_path: Path
) -> None:
    assert worker["bootstrap.servers"] == Ports(9092).bootstrap(Listener.SSL)
    keystore = str(BrokerLayout.at(tmp_path / "kafka").keystore_jks(CONNECT_PRINCIPAL))
    for prefix in ("", "consumer.", "admin."):
        assert worker[f"{prefix}security.protocol"] == "SSL"
        assert worker[f"{prefix}ssl.keystore.location"] == keystore
    assert CONNECT_PRINCIPAL in PRINCIPALS  # so the broker's CA issues its certificate


def test_the_worker_listens_on_loopback_only(worker: dict[str, str]) -> None:
    assert worker["listeners"] == "http://127.0.0.1:8083"


def test_the_rest_port_shifts_with_the_brokers_ports() -> None:
    assert rest_port_for(Ports(9092)) == 8083
    assert rest_port_for(Ports(20000)) == 8083 + 20000 - 9092
    assert rest_port_for(Ports(1024)) == 8083  # a shift below 1024 falls back


def test_the_sink_answers_commit_requests_within_seconds_on_an_idle_topic(
    worker: dict[str, str],
) -> None:
    """The Iceberg sink reads its control topic in put(), which Connect calls at least
    every offset.flush.interval.ms: the 60 s default held each commit up to a minute."""
    assert int(worker["offset.flush.interval.ms"]) <= 5_000


def test_a_restarted_worker_gets_its_partitions_within_seconds(
    worker: dict[str, str], connector: dict[str, str]
) -> None:
    """A SIGKILLed worker never leaves its groups: the sink's and the coordinator's
    consumers each waited Kafka's default 45 s session timeout after a restart."""
    assert int(worker["consumer.session.timeout.ms"]) <= 10_000
    assert int(connector["iceberg.kafka.session.timeout.ms"]) <= 10_000


def test_the_sink_writes_ad_events_into_the_table_pyiceberg_reads(
    connector: dict[str, str], tmp_path: Path
) -> None:
    warehouse = WarehouseLayout.at(tmp_path / "wh")
    assert connector["topics"] == AD_EVENTS_TOPIC
    assert connector["iceberg.tables"] == RAW_EVENTS_TABLE
    assert connector["iceberg.catalog"] == CATALOG_NAME
    assert connector["iceberg.catalog.uri"] == f"jdbc:sqlite:{warehouse.catalog_db}"
    assert connector["iceberg.catalog.warehouse"] == warehouse.warehouse_uri
    assert connector["iceberg.control.commit.interval-ms"] == "1500"
    assert connector["iceberg.tables.auto-create-enabled"] == "false"


def test_a_new_coordinator_reads_the_control_topic_from_the_start(
    connector: dict[str, str],
) -> None:
    """apache/iceberg #17551: with `latest`, announced but uncommitted files are lost."""
    assert connector["iceberg.kafka.auto.offset.reset"] == "earliest"
    assert connector["iceberg.control.topic"] == ICEBERG_CONTROL_TOPIC


def _grants() -> list[Grant]:
    state = load_desired_state([default_state_file()], env="local")
    return state.acls[f"User:{CONNECT_PRINCIPAL}"]


def _allowed(kind: str, name: str, operation: str) -> bool:
    for grant in _grants():
        granted = getattr(grant, kind)
        if granted is None or operation not in {op.value for op in grant.operations}:
            continue
        if granted == name or (grant.pattern is PatternKind.PREFIXED and name.startswith(granted)):
            return True
    return False


def test_the_connect_principal_may_do_exactly_what_the_sink_needs(
    connector: dict[str, str],
) -> None:
    """Groups: the sink's, its coordinator's (`-coord`) and the control consumers' (the
    prefix + a UUID); transactional ids: the prefix + worker/coordinator + a suffix."""
    assert _allowed("topic", AD_EVENTS_TOPIC, "read")
    assert not _allowed("topic", AD_EVENTS_TOPIC, "write")
    for operation in ("read", "write", "describe"):
        assert _allowed("topic", ICEBERG_CONTROL_TOPIC, operation)
    control_group = connector["iceberg.control.group-id-prefix"] + "0d1e"
    for group in (ICEBERG_CONNECT_GROUP, f"{ICEBERG_CONNECT_GROUP}-coord", control_group):
        assert _allowed("group", group, "read"), group
    prefix = connector["iceberg.coordinator.transactional.prefix"]
    for role in ("worker", "coordinator"):
        assert _allowed("transactional_id", f"{prefix}{role}-txn-0d1e-0", "write")
    assert not _allowed("topic", "ad-events.dlq", "read")


def test_the_control_topic_keeps_its_records_for_weeks() -> None:
    state = load_desired_state([default_state_file()])
    retention = int(state.topics[ICEBERG_CONTROL_TOPIC].configs["retention.ms"])
    assert retention >= 14 * 24 * 3600 * 1000


def _artifacts(pom: str) -> set[str]:
    root = ET.fromstring(pom)  # noqa: S314 - our own generated POM
    return {a.text or "" for a in root.iter(f"{POM_NS}artifactId")}


def test_the_poms_name_the_worker_its_logging_and_the_plugin_parts() -> None:
    assert {"connect-runtime", "log4j-slf4j2-impl", "jackson-dataformat-yaml"} <= _artifacts(
        worker_pom()
    )
    plugin = _artifacts(plugin_pom())
    assert {
        "iceberg-kafka-connect",
        "iceberg-kafka-connect-events",
        "iceberg-kafka-connect-transforms",
        "iceberg-parquet",
        "hadoop-common",
        "sqlite-jdbc",
    } <= plugin


def test_the_msk_connect_plugin_adds_the_aws_bundle_and_iam_auth_instead_of_sqlite() -> None:
    local, aws = _artifacts(plugin_pom()), _artifacts(plugin_pom(aws=True))
    assert {"iceberg-aws-bundle", "aws-msk-iam-auth"} <= aws - local
    assert "sqlite-jdbc" in local - aws
    assert {"iceberg-kafka-connect", "hadoop-common"} <= local & aws
