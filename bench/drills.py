"""Failure drills on the local three-node cluster, under steady API load, each ending with a
reconciliation: every event id that got a 2xx is in ``ad-events`` as sent, and the
database counts equal the events in Kafka exactly (nothing lost, nothing counted twice).

    python -m bench.drills leader-kill [two-down api-kill ...]   # or: all

starts its own cluster (``adstream kafka up --brokers 3`` in a temp dir), the real API
(``adstream serve``) and aggregator (``adstream aggregate``, SQLite), and prints a table:
req/s before/during/after the fault, error rate, the longest time without a 2xx, events
acknowledged, lost and counted twice. ``tests/integration/test_drills.py`` runs the same
drills and asserts only the reconciliation and what each drill promises, never timings.

Every fault waits on conditions (a new partition leader, a new controller, the database
moving), each bounded, so a drill takes seconds to a minute, not a fixed sleep.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.drill_support import (
    Load,
    Reconciliation,
    Service,
    aggregator_service,
    api_service,
    db_counts,
    reconcile,
    topic_ends,
)
from tests.support.ports import free_base_port, free_port
from tests.support.postgres import PostgresServer, running_postgres

from adstream.kafka.topics import AD_EVENTS_TOPIC
from adstream.local.cluster import LocalCluster, active_controller
from adstream.local.jars import ensure_kafka_jars
from adstream.local.layout import BrokerLayout

FAULT_TIMEOUT_S = 90.0
LOAD_STEP = 150
"""Acknowledgements a phase waits for before and after a fault: steady load, not a sleep."""
CLUSTER_HEAP_MB = 384


def wait_for(condition: Callable[[], bool], what: str, timeout: float = FAULT_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Drill:
    """The processes of one drill: the cluster, the API, one or two aggregators, the load."""

    cluster: LocalCluster
    workdir: Path
    api: Service
    aggregators: list[Service]
    load: Load
    db_url: str
    postgres: PostgresServer | None = None
    two_down: tuple[float, float] | None = None
    """While two brokers were down: (from, to), for the no-2xx check."""

    def supervise(self, stop: threading.Event) -> None:
        """Restart an aggregator that ended by itself, as ECS or systemd would (it ends on
        a lost database connection or a fatal consumer error, e.g. fenced)."""
        while not stop.wait(0.5):
            for service in self.aggregators:
                service.restart_if_exited()

    @property
    def aggregator_restarts(self) -> int:
        return sum(service.restarts for service in self.aggregators)

    def acks_grow(self, by: int = LOAD_STEP, timeout: float = FAULT_TIMEOUT_S) -> None:
        target = len(self.load.acked) + by
        wait_for(lambda: len(self.load.acked) >= target, f"{by} more acknowledgements", timeout)

    def counted(self) -> int:
        """Events of this drill counted in the database so far."""
        return sum(db_counts(self.db_url, self.load.prefix).values())

    def leader_of(self, partition: int = 0) -> int:
        metadata = self.cluster.admin().list_topics(AD_EVENTS_TOPIC, timeout=10)
        return int(metadata.topics[AD_EVENTS_TOPIC].partitions[partition].leader)

    def fully_replicated(self) -> None:
        wait_for(lambda: self.cluster.under_replicated() == (), "every replica back in sync")


# ---- the faults ------------------------------------------------------------------------------
def leader_kill(d: Drill) -> str:
    """SIGKILL the broker leading ad-events/0; restart it once a new leader serves."""
    old = d.leader_of(0)
    d.cluster.stop_node(old, kill=True)
    wait_for(lambda: d.leader_of(0) not in (old, -1), "a new leader of ad-events/0")
    d.acks_grow()
    d.cluster.start_node(old)
    d.fully_replicated()
    return f"killed node {old} (leader of partition 0)"


def two_down(d: Drill) -> str:
    """Two of three brokers down (SIGKILL): fewer replicas than min.insync.replicas=2, and
    no controller quorum either. Clients must get 503 + Retry-After, never a 2xx; the API
    must recover by itself once the brokers are back."""
    victims = [n.node_id for n in d.cluster.nodes][1:]
    for node in victims:
        d.cluster.stop_node(node, kill=True)
    down_at = time.monotonic()
    refused = len(d.load.answers)
    wait_for(
        lambda: sum(s == 503 for _, _, s in d.load.answers[refused:]) >= d.load.clients,
        "503 answers while two brokers are down",
    )
    d.two_down = (down_at, time.monotonic())
    d.cluster.start_nodes(victims)
    d.fully_replicated()
    return f"killed nodes {victims}"


def api_kill(d: Drill, rounds: int = 2) -> str:
    """SIGKILL the API process (and its worker) mid-load; start it again at once."""
    for _ in range(rounds):
        d.api.restart(signal.SIGKILL)
        d.acks_grow()
    return f"API SIGKILLed {rounds} times"


def aggregator_kill(d: Drill, rounds: int = 3) -> str:
    """SIGKILL the aggregator each time the database shows progress; start it again."""
    for _ in range(rounds):
        seen = d.counted()
        wait_for(lambda seen=seen: d.counted() > seen, "the count moving")  # type: ignore[misc]
        d.aggregators[0].restart(signal.SIGKILL)
    return f"aggregator SIGKILLed {rounds} times"


def controller_kill(d: Drill) -> str:
    """SIGKILL the active controller (the quorum leader); restart it after a new election."""
    running = list(d.cluster.nodes)
    old = active_controller(running)
    if old is None:
        raise RuntimeError("no active controller to kill")
    d.cluster.stop_node(old, kill=True)
    others = [n for n in running if n.node_id != old]
    wait_for(lambda: active_controller(others) not in (None, old), "a new active controller")
    d.acks_grow()
    d.cluster.start_node(old)
    d.fully_replicated()
    return f"killed node {old} (active controller)"


def rebalance(d: Drill) -> str:
    """A second aggregator joins (cooperative-sticky: only moved partitions pause); the first
    is SIGKILLed, and its partitions move to the second when its session expires; then it
    comes back with the same static id and takes partitions back."""
    second = aggregator_service(d.cluster, d.db_url, "drill-2", d.workdir / "agg-2.log")
    d.aggregators.append(second)
    second.start()
    wait_for(lambda: second.log_has("assigned [("), "partitions for the second aggregator")
    d.acks_grow()
    d.aggregators[0].kill(signal.SIGKILL)
    acked = len(d.load.acked)
    wait_for(lambda: d.counted() >= acked, "the survivor counting every partition")
    d.aggregators[0].start()
    d.acks_grow()
    return "2nd aggregator joined; 1st SIGKILLed, then back"


def postgres_restart(d: Drill, rounds: int = 2) -> str:
    """Restart PostgreSQL (immediate stop: connections cut, crash recovery) under the
    aggregator; a supervisor (ECS, systemd) restarts an aggregator that exits."""
    if d.postgres is None:
        raise RuntimeError("the postgres-restart drill needs a PostgreSQL server")
    for _ in range(rounds):
        seen = d.counted()
        wait_for(lambda seen=seen: d.counted() > seen, "the count moving")  # type: ignore[misc]
        d.postgres.restart()
        seen = d.counted()
        wait_for(lambda seen=seen: d.counted() > seen, "counting after the restart")  # type: ignore[misc]
    return f"PostgreSQL restarted {rounds} times"


FAULTS: dict[str, Callable[[Drill], str]] = {
    "leader-kill": leader_kill,
    "two-down": two_down,
    "api-kill": api_kill,
    "aggregator-kill": aggregator_kill,
    "controller-kill": controller_kill,
    "rebalance": rebalance,
    "postgres-restart": postgres_restart,
}
NEEDS_POSTGRES = frozenset({"rebalance", "postgres-restart"})
"""Two aggregators share one database only on PostgreSQL."""


# ---- one drill -------------------------------------------------------------------------------
@dataclass(frozen=True)
class DrillResult:
    name: str
    fault: str
    rps: tuple[float, float, float]
    """2xx per second before, during and after the fault."""
    error_rate: float
    """Attempts answered with anything but a 2xx (or not at all), over all attempts."""
    recover_s: float
    """The longest time without any 2xx from the fault to the end."""
    acked_while_two_down: int
    refused_without_retry_after: int
    aggregator_restarts: int
    """Times an aggregator ended by itself and the drill's supervisor restarted it."""
    reconciliation: Reconciliation


def run_drill(
    name: str, cluster: LocalCluster, workdir: Path, postgres: PostgresServer | None = None
) -> DrillResult:
    """Start the API and aggregator, load, inject the fault, heal, reconcile, stop.

    The counts go to SQLite, or to a new PostgreSQL database when ``postgres`` is given."""
    fault = FAULTS[name]
    workdir.mkdir(parents=True, exist_ok=True)
    db_url = postgres.new_database() if postgres else f"sqlite:///{workdir / 'counts.db'}"
    port = free_port()
    prefix = f"D{uuid.uuid4().hex[:8]}-"
    starts = topic_ends(cluster)
    api = api_service(cluster, port, workdir / "api.log")
    # One stable instance id per aggregator slot, as a StatefulSet ordinal would give: a
    # fresh id per start would leave the last drill's static member holding partitions
    # until its session expired.
    aggregator = aggregator_service(cluster, db_url, "drill-1", workdir / "agg-1.log")
    load = Load(f"http://127.0.0.1:{port}", prefix)
    drill = Drill(cluster, workdir, api, [aggregator], load, db_url, postgres)
    api.start()
    aggregator.start()
    supervising = threading.Event()
    threading.Thread(target=drill.supervise, args=(supervising,), daemon=True).start()
    try:
        load.start()
        # Steady state first: the aggregator has joined its group and is counting.
        wait_for(lambda: drill.counted() > 0, "the aggregator counting")
        drill.acks_grow()
        faulted = time.monotonic()
        what = fault(drill)
        healed = time.monotonic()
        drill.acks_grow()
        ended = time.monotonic()
        load.stop()
        reconciliation = reconcile(cluster, starts, load, db_url)
    finally:
        supervising.set()
        load.stop(drain_s=0)
        api.stop()
        for service in drill.aggregators:
            service.stop()
    return DrillResult(
        name,
        what,
        (
            _rate(load, load.started, faulted),
            _rate(load, faulted, healed),
            _rate(load, healed, ended),
        ),
        _error_rate(load),
        _longest_gap(load, faulted, ended),
        _acked_while(load, drill.two_down),
        load.refused_without_retry_after,
        drill.aggregator_restarts,
        reconciliation,
    )


def _rate(load: Load, start: float, end: float) -> float:
    ok = sum(1 for _, done, status in load.answers if start <= done < end and status // 100 == 2)
    return ok / max(end - start, 1e-9)


def _error_rate(load: Load) -> float:
    failed = sum(1 for _, _, status in load.answers if status // 100 != 2)
    return failed / max(len(load.answers), 1)


def _longest_gap(load: Load, start: float, end: float) -> float:
    acks = sorted(done for _, done, s in load.answers if s // 100 == 2 and start <= done <= end)
    marks = [start, *acks]
    return max((b - a for a, b in itertools.pairwise(marks)), default=end - start)


def _acked_while(load: Load, window: tuple[float, float] | None) -> int:
    """2xx answers to attempts sent after both brokers died and before they were restarted."""
    if window is None:
        return 0
    start, end = window
    return sum(1 for sent, done, s in load.answers if s // 100 == 2 and start <= sent <= done < end)


# ---- command line ----------------------------------------------------------------------------
HEADER = (
    "| drill | fault | req/s before / during / after | error rate | longest without 2xx "
    "| acked | lost (Kafka / DB) | counted twice | aggregator restarts |"
)


def row(result: DrillResult) -> str:
    r = result.reconciliation
    before, during, after = result.rps
    return (
        f"| {result.name} | {result.fault} | {before:.0f} / {during:.0f} / {after:.0f} "
        f"| {result.error_rate:.1%} | {result.recover_s:.1f} s | {r.acked} "
        f"| {r.missing_in_kafka} / {r.lost_in_db} | {r.counted_twice} "
        f"| {result.aggregator_restarts} |"
    )


def start_cluster(root: Path) -> LocalCluster:
    cluster = LocalCluster(
        BrokerLayout.at(root),
        ensure_kafka_jars(),
        base_port=free_base_port(nodes=3),
        heap_mb=CLUSTER_HEAP_MB,
    )
    cluster.up(progress=print)
    return cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("drills", nargs="+", choices=[*FAULTS, "all"])
    args = parser.parse_args()
    names = list(FAULTS) if "all" in args.drills else args.drills
    results = []
    with tempfile.TemporaryDirectory(prefix="adstream-drills-") as tmp, ExitStack() as stack:
        cluster = start_cluster(Path(tmp) / "kafka")
        stack.callback(cluster.down)
        print(f"cluster up; RSS per node: {_rss(cluster)}")
        postgres = stack.enter_context(running_postgres()) if NEEDS_POSTGRES & {*names} else None
        for name in names:
            pg = postgres if name in NEEDS_POSTGRES else None
            results.append(run_drill(name, cluster, Path(tmp) / name, pg))
            print(row(results[-1]), flush=True)
        print(f"RSS per node after the drills: {_rss(cluster)}")
    print("\n" + HEADER + "\n|" + "---|" * 9)
    for result in results:
        print(row(result))


def _rss(cluster: LocalCluster) -> str:
    return ", ".join(f"{node.rss_mib} MiB" for node in cluster.status().nodes)


if __name__ == "__main__":
    main()
