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
from adstream.local.settings import LocalKafkaSettings

app = typer.Typer(
    help="Run Prometheus on loopback, scraping the local API, aggregator and brokers with the "
    "alert rules of deploy/prometheus.",
    no_args_is_help=True,
)

DirOpt = Annotated[
    Path, typer.Option("--dir", help="State directory: config copy, data, log, pid file")
]
PortOpt = Annotated[
    int | None,
    typer.Option(help="Prometheus' own port on 127.0.0.1 [default: the running one, else 9090]"),
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
) -> None:
    """Start Prometheus (idempotent; with new targets, a running one rereads them)."""
    prometheus = LocalPrometheus(dir.resolve(), port)
    try:
        prometheus.configure(
            api or [DEFAULT_API_TARGET],
            aggregator or [DEFAULT_AGGREGATOR_TARGET],
            kafka or LocalKafkaSettings().metrics_targets(),
        )
        pid = prometheus.up()
    except MonitorError as exc:
        _fail(exc)
    typer.echo(
        f"Prometheus running (pid {pid}): {prometheus.url}  (alerts: {prometheus.url}/alerts)"
    )


@app.command()
def down(dir: DirOpt = DEFAULT_DIR) -> None:
    """Stop Prometheus; its data stays in the state directory."""
    stopped = LocalPrometheus(dir.resolve()).down()
    typer.echo("Prometheus stopped" if stopped else "Prometheus was not running")


@app.command()
def status(dir: DirOpt = DEFAULT_DIR, port: PortOpt = None) -> None:
    """Whether it runs and answers; exit 1 if not."""
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
