"""`adstream kafka ...` commands; mounted by `adstream.cli` as the `kafka` sub-app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from adstream.kafka.clustercheck import Operation
from adstream.kafka.doctor import DEFAULT_REQUIRED, run_doctor
from adstream.kafka.java_properties import JavaPropertiesError
from adstream.kafka.keystores import StoreError
from adstream.kafka.load import load_settings
from adstream.kafka.topics import AD_EVENTS_TOPIC

app = typer.Typer(help="Kafka client tools: connection doctor.", no_args_is_help=True)

EXIT_CHECK_FAILED = 1
EXIT_BAD_CONFIG = 2


@app.callback()
def _kafka() -> None:
    """Kafka client tools."""


@app.command()
def check(
    kafka_config: Annotated[
        Path | None,
        typer.Option(
            "--kafka-config",
            help="Java client.properties or dotenv file; default: ADSTREAM_KAFKA_* variables.",
        ),
    ] = None,
    topic: Annotated[str, typer.Option(help="Topic to check authorization on.")] = AD_EVENTS_TOPIC,
    require: Annotated[
        list[Operation] | None,
        typer.Option(
            "--require", case_sensitive=False, help="Operation the principal needs (repeatable)."
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per network step.")] = 10.0,
) -> None:
    """Diagnose the connection to Kafka step by step and print the usual fix of a failure."""
    try:
        settings = load_settings(kafka_config)
    except (ValidationError, JavaPropertiesError, StoreError, OSError) as exc:
        source = kafka_config or "ADSTREAM_KAFKA_* environment variables"
        typer.echo(f"invalid Kafka settings in {source}: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_CONFIG) from exc
    report = run_doctor(
        settings, topic=topic, required=tuple(require or DEFAULT_REQUIRED), timeout=timeout
    )
    typer.echo(report.render())
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)
