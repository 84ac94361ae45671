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
from adstream.kafka import topics
from adstream.kafka.topics import AD_EVENTS_TOPIC, AGGREGATOR_GROUP
from adstream.local.defaults import NoKafkaSettingsError, service_settings


def aggregate(
    kafka_config: Annotated[
        Path | None,
        typer.Option(
            help="Java client.properties or dotenv file [default: the local broker, mTLS]"
        ),
    ] = None,
    db: Annotated[
        str, typer.Option(envvar="ADSTREAM_AGGREGATE_DB", help="sqlite:///PATH or postgresql://…")
    ] = DEFAULT_DB_URL,
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
        settings = service_settings(kafka_config, "adstream-aggregator")
        config = AggregatorConfig(
            topic=topic,
            dead_letter_topic=dead_letter_topic or topics.dead_letter_topic(topic),
            group=group,
            instance_id=instance_id,
            batch_size=batch_size,
        )
        run_aggregator(settings, db, config, metrics_port=metrics_port)
    except (
        NoKafkaSettingsError,
        StoreUrlError,
        DeadLetterTopicError,
        ValidationError,
        OSError,
    ) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    except ConsumerFatalError as exc:  # a supervisor restarts it; the counts are consistent
        typer.secho(f"error: {exc}; restart the aggregator", fg=typer.colors.RED, err=True)
        raise typer.Exit(3) from exc
