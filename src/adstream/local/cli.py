"""``adstream kafka install | up | down | status``: the local MSK-equivalent broker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from adstream.local.broker import BrokerError, BrokerStatus, LocalBroker
from adstream.local.jars import JarFetchError, ensure_kafka_jars
from adstream.local.layout import LISTENER_PURPOSE
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
HeapOpt = Annotated[int | None, typer.Option("--heap-mb", help="JVM max heap [default: 512]")]


def _settings(**overrides: Any) -> LocalKafkaSettings:
    return LocalKafkaSettings(**{k: v for k, v in overrides.items() if v is not None})


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _broker(settings: LocalKafkaSettings) -> LocalBroker:
    try:
        return settings.broker(progress=_say)
    except (ToolchainError, JarFetchError) as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def install() -> None:
    """Fetch the Kafka jars from Maven Central into the cache (once)."""
    settings = _settings()
    try:
        dist = ensure_kafka_jars(settings.version, settings.cache_dir, progress=_say)
    except (ToolchainError, JarFetchError) as exc:
        _fail(exc)
    typer.echo(f"Kafka {dist.version} jars: {dist.lib_dir}")


@app.command()
def up(
    dir: DirOpt = None,
    base_port: BasePortOpt = None,
    heap_mb: HeapOpt = None,
    state_file: StateFileOpt = None,
) -> None:
    """Start the broker (idempotent); return when every listener answers and the topics, ACLs
    and SCRAM users of the desired-state file (with its local overlay) are in place."""
    broker = _broker(
        _settings(dir=dir, base_port=base_port, heap_mb=heap_mb, state_file=state_file)
    )
    try:
        status = broker.up(progress=_say)
    except (BrokerError, ToolchainError) as exc:
        _fail(exc)
    _print_status(broker, status)


@app.command()
def down(dir: DirOpt = None) -> None:
    """Stop the broker gracefully; its data is kept for the next `up`."""
    _broker(_settings(dir=dir)).down(progress=_say)


@app.command()
def status(dir: DirOpt = None, base_port: BasePortOpt = None) -> None:
    """Show whether the broker runs and each listener's bootstrap address."""
    broker = _broker(_settings(dir=dir, base_port=base_port))
    current = broker.status()
    _print_status(broker, current)
    if not current.running:
        raise typer.Exit(3)


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
