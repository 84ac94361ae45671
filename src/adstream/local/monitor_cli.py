"""``adstream monitor up | down | status``: a local Prometheus scraping `make run`'s services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from adstream.local.grafana import write_dashboards
from adstream.local.monitor import (
    DEFAULT_AGGREGATOR_TARGET,
    DEFAULT_API_TARGET,
    LocalPrometheus,
    MonitorError,
)
from adstream.local.node_exporter import BINARY, DEFAULT_NODE_PORT, LocalNodeExporter
from adstream.local.settings import LocalKafkaSettings

app = typer.Typer(
    help="Run Prometheus on loopback, scraping the local API, aggregator and brokers (and a node "
    "exporter where installed) with the alert rules of deploy/prometheus.",
    no_args_is_help=True,
)

DirOpt = Annotated[
    Path, typer.Option("--dir", help="State directory: config copy, data, log, pid file")
]
PortOpt = Annotated[
    int | None,
    typer.Option(help="Prometheus' own port on 127.0.0.1 [default: the running one, else 9090]"),
]
NodePortOpt = Annotated[
    int | None,
    typer.Option(
        help=f"The node exporter's port on 127.0.0.1 [default: the running one, else "
        f"{DEFAULT_NODE_PORT}]"
    ),
]
DEFAULT_DIR = Path(".adstream/prometheus")


def _fail(exc: Exception) -> NoReturn:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def up(
    dir: DirOpt = DEFAULT_DIR,
    port: PortOpt = None,
    api: Annotated[
        list[str] | None, typer.Option(help="API host:port to scrape (repeatable)")
    ] = None,
    aggregator: Annotated[
        list[str] | None, typer.Option(help="Aggregator metrics host:port (repeatable)")
    ] = None,
    kafka: Annotated[
        list[str] | None,
        typer.Option(
            help="Broker JMX exporter host:port (repeatable) [default: every node of the "
            "local broker or cluster, base port + 9]"
        ),
    ] = None,
    node_port: NodePortOpt = None,
) -> None:
    """Start Prometheus and the node exporter where installed (idempotent; with new targets,
    a running Prometheus rereads them)."""
    prometheus = LocalPrometheus(dir.resolve(), port)
    node = LocalNodeExporter(dir.resolve(), node_port)
    try:
        node_pid = node.up()
        prometheus.configure(
            api or [DEFAULT_API_TARGET],
            aggregator or [DEFAULT_AGGREGATOR_TARGET],
            kafka or LocalKafkaSettings().metrics_targets(),
            [node.target] if node_pid is not None else [],
        )
        pid = prometheus.up()
    except MonitorError as exc:
        _fail(exc)
    if node_pid is None:
        typer.echo(
            f"{BINARY} not installed (scripts/system-deps.sh installs it): "
            "no disk metrics, KafkaDiskAlmostFull cannot fire"
        )
    else:
        typer.echo(f"Node exporter running (pid {node_pid}): http://{node.target}/metrics")
    typer.echo(
        f"Prometheus running (pid {pid}): {prometheus.url}  (alerts: {prometheus.url}/alerts)"
    )


@app.command()
def down(dir: DirOpt = DEFAULT_DIR) -> None:
    """Stop Prometheus and the node exporter; Prometheus' data stays in the state directory."""
    stopped = LocalPrometheus(dir.resolve()).down()
    typer.echo("Prometheus stopped" if stopped else "Prometheus was not running")
    node_stopped = LocalNodeExporter(dir.resolve()).down()
    typer.echo("Node exporter stopped" if node_stopped else "Node exporter was not running")


@app.command()
def status(dir: DirOpt = DEFAULT_DIR, port: PortOpt = None) -> None:
    """Whether Prometheus runs and answers (exit 1 if not), and the node exporter."""
    node = LocalNodeExporter(dir.resolve())
    node_pid = node.running_pid()
    if node_pid is None:
        typer.echo("Node exporter not running")
    else:
        typer.echo(f"Node exporter pid {node_pid}: http://{node.target}/metrics")
    state = LocalPrometheus(dir.resolve(), port).status()
    if not state.running:
        typer.echo("Prometheus not running")
        raise typer.Exit(1)
    typer.echo(f"Prometheus pid {state.pid}: {state.url} {'ready' if state.ready else 'NOT ready'}")
    if not state.ready:
        raise typer.Exit(1)


@app.command()
def dashboards(
    out: Annotated[Path, typer.Option(help="Folder for the JSON files")] = Path("deploy/grafana"),
) -> None:
    """Write the Grafana dashboards (API, producer, aggregator, Kafka brokers) as JSON."""
    for path in write_dashboards(out):
        typer.echo(str(path))
