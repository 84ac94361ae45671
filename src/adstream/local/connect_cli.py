"""``adstream connect up | down | status``: Kafka Connect with the Iceberg sink, locally."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from adstream.local.connect import ConnectError, ConnectStatus, LocalConnect
from adstream.local.connect_jars import build_msk_plugin_zip
from adstream.local.connect_settings import LocalConnectSettings
from adstream.local.jars import JarFetchError
from adstream.local.toolchain import ToolchainError

app = typer.Typer(
    help="Run a local Kafka Connect worker sinking ad-events into an Apache Iceberg table.",
    no_args_is_help=True,
)

DirOpt = Annotated[
    Path | None, typer.Option("--dir", help="State directory [default: .adstream/connect]")
]
RestPortOpt = Annotated[
    int | None,
    typer.Option(
        "--rest-port",
        help="Worker REST port on 127.0.0.1 [default: 8083 + the broker's base port - 9092]",
    ),
]
HeapOpt = Annotated[int | None, typer.Option("--heap-mb", help="JVM max heap [default: 384]")]
CommitOpt = Annotated[
    int | None,
    typer.Option("--commit-interval-ms", help="Iceberg commit interval [default: 10000]"),
]


def _settings(**overrides: Any) -> LocalConnectSettings:
    return LocalConnectSettings(**{k: v for k, v in overrides.items() if v is not None})


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _fail(exc: Exception) -> NoReturn:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _worker(settings: LocalConnectSettings) -> LocalConnect:
    try:
        return settings.worker(progress=_say)
    except (ToolchainError, JarFetchError) as exc:
        _fail(exc)


@app.command()
def install() -> None:
    """Fetch the Kafka Connect worker and the Iceberg sink plugin from Maven Central (once)."""
    worker = _worker(_settings())
    typer.echo(f"Kafka Connect jars: {worker.dist.lib_dir}  plugin: {worker.dist.plugin_dir}")


@app.command("plugin-zip")
def plugin_zip(
    out: Annotated[Path, typer.Argument(help="Where to write the ZIP")] = Path(
        "iceberg-kafka-connect-msk.zip"
    ),
) -> None:
    """Build MSK Connect's custom plugin ZIP (the same sink + AWS bundle + aws-msk-iam-auth)."""
    try:
        written = build_msk_plugin_zip(out, progress=_say)
    except (ToolchainError, JarFetchError) as exc:
        _fail(exc)
    typer.echo(f"{written}: the warehouse.plugin_zip of a CDK profile (README: Deploying to AWS)")


@app.command()
def up(
    dir: DirOpt = None,
    rest_port: RestPortOpt = None,
    heap_mb: HeapOpt = None,
    commit_interval_ms: CommitOpt = None,
) -> None:
    """Create the Iceberg table if missing and start the worker (idempotent); return when
    the sink's task runs. Needs the local broker (`adstream kafka up`)."""
    worker = _worker(
        _settings(
            dir=dir, rest_port=rest_port, heap_mb=heap_mb, commit_interval_ms=commit_interval_ms
        )
    )
    try:
        status = worker.up(progress=_say)
    except (ConnectError, ToolchainError) as exc:
        _fail(exc)
    _print_status(worker, status)


@app.command()
def down(dir: DirOpt = None) -> None:
    """Stop the worker gracefully; the table and the sink's offsets are kept."""
    _worker(_settings(dir=dir)).down(progress=_say)


@app.command()
def status(dir: DirOpt = None) -> None:
    """Show whether the worker runs and the state of the sink connector and its task."""
    worker = _worker(_settings(dir=dir))
    current = worker.status()
    _print_status(worker, current)
    if not current.running:
        raise typer.Exit(3)


def _print_status(worker: LocalConnect, status: ConnectStatus) -> None:
    state = f"running (pid {status.pid})" if status.running else "not running"
    dist = worker.dist
    typer.echo(
        f"Kafka Connect {dist.kafka_version} + Iceberg {dist.iceberg_version} "
        f"in {worker.layout.root}: {state}"
    )
    if not status.running:
        return
    typer.echo(f"  REST      {status.rest_url}")
    connector = (status.connector or {}).get("connector", {}).get("state", "no answer")
    tasks = ", ".join(status.task_states) or "none"
    typer.echo(f"  connector {connector}   tasks: {tasks}")
    typer.echo(f'  table     {worker.warehouse.root} (adstream warehouse query "SQL")')
    typer.echo(f"  log       {worker.layout.worker_log}")
