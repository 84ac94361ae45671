"""``adstream kafka install | up | down | status | stop-node | start-node``: the local
MSK-equivalent broker, or a three-node cluster of them (``up --brokers 3``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from adstream.local.broker import BrokerError, LocalBroker
from adstream.local.broker_state import BrokerStatus
from adstream.local.cluster import ClusterStatus, LocalCluster
from adstream.local.jars import JarFetchError, ensure_kafka_jars
from adstream.local.jmx_exporter import ensure_agent
from adstream.local.layout import LISTENER_PURPOSE, Listener
from adstream.local.settings import LocalKafkaSettings
from adstream.local.toolchain import ToolchainError

app = typer.Typer(help="Run a local Kafka broker configured like Amazon MSK.", no_args_is_help=True)

DirOpt = Annotated[
    Path | None, typer.Option("--dir", help="State directory [default: .adstream/kafka]")
]
BasePortOpt = Annotated[
    int | None,
    typer.Option(help="PLAINTEXT port; controller +1, TLS +2, SCRAM +4 [default: 9092]"),
]
StateFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        help="Desired-state file; its .local overlay is merged [default: deploy/kafka.yaml]",
    ),
]
HeapOpt = Annotated[
    int | None, typer.Option("--heap-mb", help="JVM max heap per node [default: 512]")
]
BrokersOpt = Annotated[
    int | None,
    typer.Option(
        "--brokers",
        help="1, or 3: a KRaft cluster (each node broker + controller, ports +10 per node, "
        "replication factor 3, min.insync.replicas 2) [default: 1]",
    ),
]
NodeArg = Annotated[int, typer.Argument(help="Node number (1-3)")]


def _settings(**overrides: Any) -> LocalKafkaSettings:
    return LocalKafkaSettings(**{k: v for k, v in overrides.items() if v is not None})


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _broker(settings: LocalKafkaSettings) -> LocalBroker:
    try:
        return settings.broker(progress=_say)
    except (ToolchainError, JarFetchError) as exc:
        _fail(exc)


def _cluster(settings: LocalKafkaSettings) -> LocalCluster:
    try:
        return settings.cluster(progress=_say)
    except (ToolchainError, JarFetchError, BrokerError) as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def install() -> None:
    """Fetch the Kafka jars and the JMX exporter agent from Maven Central into the cache."""
    settings = _settings()
    try:
        dist = ensure_kafka_jars(settings.version, settings.cache_dir, progress=_say)
        agent = ensure_agent(cache_dir=dist.home.parent, progress=_say)
    except (ToolchainError, JarFetchError) as exc:
        _fail(exc)
    typer.echo(f"Kafka {dist.version} jars: {dist.lib_dir}")
    typer.echo(f"Prometheus JMX exporter: {agent}")


@app.command()
def up(
    dir: DirOpt = None,
    base_port: BasePortOpt = None,
    heap_mb: HeapOpt = None,
    state_file: StateFileOpt = None,
    brokers: BrokersOpt = None,
) -> None:
    """Start the broker or cluster (idempotent); return when every listener answers and the
    topics, ACLs and SCRAM users of the desired-state file (with its local overlays) are in
    place."""
    settings = _settings(
        dir=dir, base_port=base_port, heap_mb=heap_mb, state_file=state_file, brokers=brokers
    )
    try:
        if settings.cluster_size() > 1:
            cluster = _cluster(settings)
            _print_cluster(cluster, cluster.up(progress=_say))
            return
        broker = _broker(settings)
        status = broker.up(progress=_say)
    except (BrokerError, ToolchainError) as exc:
        _fail(exc)
    _print_status(broker, status)


@app.command()
def down(dir: DirOpt = None) -> None:
    """Stop the broker (or every node) gracefully; its data is kept for the next `up`."""
    settings = _settings(dir=dir)
    if settings.cluster_size() > 1:
        _cluster(settings).down(progress=_say)
    else:
        _broker(settings).down(progress=_say)


@app.command()
def status(dir: DirOpt = None, base_port: BasePortOpt = None) -> None:
    """Show whether the broker runs and each listener's bootstrap address; for a cluster,
    each node (pid, RSS), the active controller and the under-replicated partitions."""
    settings = _settings(dir=dir, base_port=base_port)
    if settings.cluster_size() > 1:
        cluster = _cluster(settings)
        current_cluster = cluster.status()
        _print_cluster(cluster, current_cluster)
        if not current_cluster.running:
            raise typer.Exit(3)
        return
    broker = _broker(settings)
    current = broker.status()
    _print_status(broker, current)
    if not current.running:
        raise typer.Exit(3)


@app.command("stop-node")
def stop_node(
    node: NodeArg,
    dir: DirOpt = None,
    kill: Annotated[
        bool, typer.Option("--kill", help="SIGKILL (a crash) instead of a controlled shutdown")
    ] = False,
) -> None:
    """Stop one node of a local cluster (for failure drills)."""
    cluster = _cluster(_settings(dir=dir))
    try:
        cluster.stop_node(node, _say, kill=kill)
    except BrokerError as exc:
        _fail(exc)


@app.command("start-node")
def start_node(node: NodeArg, dir: DirOpt = None) -> None:
    """Start one stopped node of a local cluster again; return when it serves."""
    cluster = _cluster(_settings(dir=dir))
    try:
        cluster.start_node(node, _say)
    except (BrokerError, ToolchainError) as exc:
        _fail(exc)


def _print_status(broker: LocalBroker, status: BrokerStatus) -> None:
    state = f"running (pid {status.pid})" if status.running else "not running"
    typer.echo(f"Kafka {broker.dist.version} in {broker.layout.root}: {state}")
    for item in status.listeners:
        answer = "answers" if item.answers else "no answer"
        purpose = LISTENER_PURPOSE[item.listener]
        typer.echo(f"  {item.listener.value:<10} {item.bootstrap:<16} {answer:<9}  {purpose}")
    if status.running:
        layout = broker.layout
        typer.echo("Connect with (Java client.properties format, absolute paths):")
        for name in ("plaintext", "tls", "scram"):
            typer.echo(f"  {layout.client_properties(name)}")
        typer.echo(f"Certificates: {layout.certs_dir}  Passwords: {layout.secrets_file}")


def _print_cluster(cluster: LocalCluster, status: ClusterStatus) -> None:
    running = sum(node.broker.running for node in status.nodes)
    typer.echo(
        f"Kafka {cluster.dist.version} cluster in {cluster.layout.root}: "
        f"{running} of {len(status.nodes)} nodes running"
    )
    for node in status.nodes:
        state = f"pid {node.broker.pid}, RSS {node.rss_mib} MiB" if node.broker.running else "down"
        role = "  active controller" if node.node_id == status.controller else ""
        typer.echo(f"  node {node.node_id}: {state}{role}")
        for item in node.broker.listeners:
            answer = "answers" if item.answers else "no answer"
            typer.echo(f"    {item.listener.value:<10} {item.bootstrap:<16} {answer}")
    if status.controller is None:
        typer.echo("Active controller: unknown (no quorum?)")
    urp = status.under_replicated
    if urp is None:
        typer.echo("Under-replicated partitions: unknown (no metadata answer)")
    else:
        typer.echo(
            f"Under-replicated partitions: {len(urp)}" + (f" ({', '.join(urp)})" * bool(urp))
        )
    typer.echo(f"Bootstrap (mTLS): {cluster.ports.bootstrap(Listener.SSL)}")
    typer.echo(f"Client files: {cluster.layout.client_properties('tls')} (and -plaintext, -scram)")
