"""Failure drills on a real three-node cluster under real API load (``bench/drills.py``).

Each drill ends with the reconciliation: every event id that got a 2xx is in ``ad-events``
as sent, and the database counts equal the events in Kafka, so none is lost or counted
twice. Timings are measured by ``python -m bench.drills`` and never asserted here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.drills import DrillResult, row, run_drill

from adstream.local.cluster import LocalCluster
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration


def _drill(
    name: str, cluster: LocalCluster, tmp_path: Path, postgres: PostgresServer | None = None
) -> DrillResult:
    result = run_drill(name, cluster, tmp_path / name, postgres)
    print(row(result))  # the figures, shown with -s; never asserted
    reconciled = result.reconciliation
    logs = "\n".join(p.read_text()[-2000:] for p in sorted((tmp_path / name).glob("agg-*.log")))
    assert reconciled.acked > 0
    assert reconciled.missing_in_kafka == 0, reconciled
    assert reconciled.altered_in_kafka == 0, reconciled
    assert reconciled.unacked_in_kafka == 0, reconciled
    assert reconciled.lost_in_db == 0, f"{reconciled}\n{logs}"
    assert reconciled.counted_twice == 0, f"{reconciled}\n{logs}"
    return result


def test_a_killed_partition_leader_loses_no_acknowledged_event(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    _drill("leader-kill", cluster, tmp_path)


def test_two_brokers_down_gets_503_with_retry_after_never_2xx_and_recovers(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    result = _drill("two-down", cluster, tmp_path)
    assert result.acked_while_two_down == 0
    assert result.refused_without_retry_after == 0
    assert result.rps[2] > 0  # acknowledged again after the brokers returned, by itself


def test_a_killed_api_process_never_acknowledged_an_event_missing_from_kafka(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    _drill("api-kill", cluster, tmp_path)


def test_an_aggregator_killed_again_and_again_counts_exactly(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    _drill("aggregator-kill", cluster, tmp_path)


def test_losing_the_active_controller_loses_no_acknowledged_event(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    _drill("controller-kill", cluster, tmp_path)


def test_two_aggregators_rebalancing_through_a_crash_count_exactly(
    cluster: LocalCluster, postgres: PostgresServer, tmp_path: Path
) -> None:
    _drill("rebalance", cluster, tmp_path, postgres)


def test_postgres_restarted_under_the_aggregator_counts_exactly(
    cluster: LocalCluster, postgres: PostgresServer, tmp_path: Path
) -> None:
    _drill("postgres-restart", cluster, tmp_path, postgres)
