"""`adstream kafka ...` commands; mounted by `adstream.cli` as the `kafka` sub-app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from adstream.kafka.apply import (
    ApplyError,
    apply_plan,
    check_with_broker,
    read_live_state,
    resolve_passwords,
    scope_for,
)
from adstream.kafka.clustercheck import Operation
from adstream.kafka.desired_state import (
    DesiredStateError,
    default_state_file,
    load_desired_state,
)
from adstream.kafka.doctor import DEFAULT_REQUIRED, run_doctor
from adstream.kafka.factory import make_admin
from adstream.kafka.java_properties import JavaPropertiesError
from adstream.kafka.keystores import StoreError
from adstream.kafka.load import load_settings
from adstream.kafka.plan import AlterQuota, Plan, compute_plan
from adstream.kafka.quotas import QuotaError, quota_client_if
from adstream.kafka.settings import KafkaSettings
from adstream.kafka.sizing import SizingInput, suggest_partitions
from adstream.kafka.topics import AD_EVENTS_TOPIC

app = typer.Typer(help="Kafka client tools: connection doctor, plan/apply.", no_args_is_help=True)

EXIT_CHECK_FAILED = 1
EXIT_BAD_CONFIG = 2
# plan/apply, as Terraform's -detailed-exitcode: 0 nothing to do, 1 error, 2 changes pending.
EXIT_NO_CHANGES = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

KafkaConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--kafka-config",
        help="Java client.properties or dotenv file; default: ADSTREAM_KAFKA_* variables.",
    ),
]
FilesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--file",
        "-f",
        help="Desired-state YAML; repeat to merge overlays in order [default: deploy/kafka.yaml].",
    ),
]
EnvOpt = Annotated[
    str | None,
    typer.Option("--env", help="Also merge the first file's overlay kafka.<ENV>.yaml."),
]
AllowDeleteOpt = Annotated[
    bool,
    typer.Option(
        "--allow-delete",
        help="Also delete topics, ACLs, users and quotas missing from the file (within `managed`).",
    ),
]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds per Admin API request.")]


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
    settings = _settings(kafka_config, EXIT_BAD_CONFIG)
    report = run_doctor(
        settings, topic=topic, required=tuple(require or DEFAULT_REQUIRED), timeout=timeout
    )
    typer.echo(report.render())
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _settings(kafka_config: Path | None, exit_code: int) -> KafkaSettings:
    try:
        return load_settings(kafka_config)
    except (ValidationError, JavaPropertiesError, StoreError, OSError) as exc:
        source = kafka_config or "ADSTREAM_KAFKA_* environment variables"
        typer.echo(f"invalid Kafka settings in {source}: {exc}", err=True)
        raise typer.Exit(exit_code) from exc


def _error(message: object) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(EXIT_ERROR)


def _plan(
    files: list[Path] | None,
    env: str | None,
    kafka_config: Path | None,
    allow_delete: bool,
    timeout: float,
) -> tuple[Plan, KafkaSettings]:
    """Read the file and the cluster, diff them, and let the broker validate the changes."""
    try:
        desired = load_desired_state(files or [default_state_file()], env)
    except DesiredStateError as exc:
        raise _error(exc) from None
    settings = _settings(kafka_config, EXIT_ERROR)
    admin = make_admin(settings)
    scope = scope_for(settings)
    try:
        with quota_client_if(
            desired.quotas is not None and scope.quotas, settings, timeout
        ) as quotas:
            live = read_live_state(admin, desired, scope, timeout, quotas)
            found = compute_plan(desired, live, allow_delete=allow_delete)
            plan = check_with_broker(admin, found, timeout, quotas)
    except (ApplyError, QuotaError) as exc:
        raise _error(exc) from None
    typer.echo(plan.render())
    if plan.refusals:
        raise typer.Exit(EXIT_ERROR)
    return plan, settings


def plan(
    files: FilesOpt = None,
    env: EnvOpt = None,
    kafka_config: KafkaConfigOpt = None,
    allow_delete: AllowDeleteOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Show what `apply` would change on the cluster. Exit 0: nothing; 2: changes; 1: error
    (including a change Kafka cannot make, such as fewer partitions)."""
    found, _ = _plan(files, env, kafka_config, allow_delete, timeout)
    raise typer.Exit(EXIT_CHANGES if found.changes else EXIT_NO_CHANGES)


def apply(
    files: FilesOpt = None,
    env: EnvOpt = None,
    kafka_config: KafkaConfigOpt = None,
    allow_delete: AllowDeleteOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Make the cluster match the file; refuses before changing anything if any change is
    impossible or refused by the broker. A second run finds nothing to do."""
    found, settings = _plan(files, env, kafka_config, allow_delete, timeout)
    if not found.changes:
        return
    try:
        passwords = resolve_passwords(found)
        with quota_client_if(bool(found.of(AlterQuota)), settings, timeout) as quotas:
            apply_plan(make_admin(settings), found, passwords, timeout, quotas)
    except (DesiredStateError, ApplyError, QuotaError) as exc:
        raise _error(exc) from None
    typer.echo(f"Applied {len(found.changes)} change(s).")


def size(
    mb_per_s: Annotated[float, typer.Option("--mb-per-s", help="Peak write rate, MB/s.")],
    consumers: Annotated[
        int, typer.Option("--consumers", help="Consumer instances that should share the load.")
    ] = 1,
    partition_mb_per_s: Annotated[
        float, typer.Option(help="What one partition takes in, MB/s (measure yours).")
    ] = 10.0,
    consumer_mb_per_s: Annotated[
        float, typer.Option(help="What one consumer instance processes, MB/s (measure yours).")
    ] = 5.0,
    headroom: Annotated[float, typer.Option(help="Growth factor over the peak.")] = 2.0,
    brokers: Annotated[int, typer.Option(help="Brokers; the count is rounded to a multiple.")] = 3,
) -> None:
    """Suggest a partition count for a topic from its throughput, and explain why."""
    try:
        sizing = suggest_partitions(
            SizingInput(
                mb_per_s, consumers, partition_mb_per_s, consumer_mb_per_s, headroom, brokers
            )
        )
    except ValueError as exc:
        raise _error(exc) from None
    typer.echo(f"partitions: {sizing.partitions}")
    for line in sizing.explanation:
        typer.echo(f"  - {line}")
