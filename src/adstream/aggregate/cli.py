"""``adstream aggregate``: count ad events per ad and minute into SQLite or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from adstream.aggregate.config import AggregatorConfig
from adstream.aggregate.dead_letters import DeadLetterTopicError
from adstream.aggregate.model import ConsumerFatalError
from adstream.aggregate.store_url import DEFAULT_DB_URL, StoreUrlError
from adstream.deployment import DEPLOYED_ENV, DeploymentSettings
from adstream.kafka import topics
from adstream.kafka.schema_settings import SchemaSettings, framed_decoder
from adstream.kafka.topic_check import TopicCheckError, TopicCheckUnavailableError, check_topics
from adstream.kafka.topics import AD_EVENTS_TOPIC, AGGREGATOR_GROUP
from adstream.local.defaults import NoKafkaSettingsError, service_settings

DB_URL_ENV = "ADSTREAM_AGGREGATE_DB"


def database_url(db: str | None, deployment: DeploymentSettings) -> str:
    """The count database; the local SQLite file only outside a deployment, where a task's
    disk is ephemeral and a fresh file would recount the topic from its start."""
    if db is not None:
        return db
    if deployment.deployed:
        raise StoreUrlError(
            f"no count database: set {DB_URL_ENV} (or --db) to a postgresql:// URL; "
            f"{DEPLOYED_ENV}=true refuses the default {DEFAULT_DB_URL}, which a deployed "
            "task would lose with its disk"
        )
    return DEFAULT_DB_URL


def aggregate(
    kafka_config: Annotated[
        Path | None,
        typer.Option(
            help="Java client.properties or dotenv file [default: the local broker, mTLS]"
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            envvar=DB_URL_ENV,
            help=f"sqlite:///PATH or postgresql://… [default: {DEFAULT_DB_URL}; "
            f"required when {DEPLOYED_ENV}=true]",
        ),
    ] = None,
    topic: Annotated[
        str, typer.Option(envvar="ADSTREAM_AGGREGATE_TOPIC", help="Topic to count")
    ] = AD_EVENTS_TOPIC,
    dead_letter_topic: Annotated[
        str | None, typer.Option(help="Where unparsable records go [default: TOPIC.dlq]")
    ] = None,
    group: Annotated[
        str, typer.Option(envvar="ADSTREAM_AGGREGATE_GROUP", help="Consumer group")
    ] = AGGREGATOR_GROUP,
    instance_id: Annotated[
        str | None,
        typer.Option(
            help="Static group membership id: a restart takes its partitions back at once"
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per transaction, at most")] = 5000,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on 127.0.0.1:PORT")
    ] = None,
) -> None:
    """Count impressions and clicks per ad and minute, exactly once, into a database."""
    # Imported here: prometheus-client must not be loaded in the CLI process that forks the
    # API's workers (their multiprocess metrics mode is chosen at import time).
    from adstream.aggregate.service import run_aggregator

    try:
        deployment = DeploymentSettings()
        db_url = database_url(db, deployment)
        settings = service_settings(kafka_config, "adstream-aggregator")
        config = AggregatorConfig(
            topic=topic,
            dead_letter_topic=dead_letter_topic or topics.dead_letter_topic(topic),
            group=group,
            instance_id=instance_id,
            batch_size=batch_size,
        )
        wanted = deployment.topic_requirements()
        if wanted is not None:
            check_topics(settings, [config.topic, config.dead_letter_topic], wanted)
        # Records of every format are read: JSON always, registry-framed ones when
        # ADSTREAM_SCHEMA_REGISTRY_URL (or ..._REGISTRY=glue) says where their schemas are.
        framed = framed_decoder(SchemaSettings())
        run_aggregator(settings, db_url, config, metrics_port=metrics_port, framed=framed)
    except TopicCheckUnavailableError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    except (
        NoKafkaSettingsError,
        StoreUrlError,
        DeadLetterTopicError,
        TopicCheckError,
        ValidationError,
        ValueError,
        OSError,
    ) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    except ConsumerFatalError as exc:  # a supervisor restarts it; the counts are consistent
        typer.secho(f"error: {exc}; restart the aggregator", fg=typer.colors.RED, err=True)
        raise typer.Exit(3) from exc
