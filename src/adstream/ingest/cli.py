"""`adstream serve`: run the ingest API with several worker processes under Granian.

Settings are checked once here (a bad file fails with exit code 2 before any worker
starts); each worker then builds its own app from `$ADSTREAM_KAFKA_CONFIG`. A fresh
Prometheus multiprocess directory is created per run so `/metrics` sums all workers;
this module must not import prometheus-client (workers are forked from this process).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from granian import Granian
from granian.constants import Interfaces, Loops
from pydantic import ValidationError

from adstream.deployment import DeploymentSettings
from adstream.ingest.config import (
    APP_FACTORY_ENV,
    KAFKA_CONFIG_ENV,
    MULTIPROC_ENV,
    STATE_DIR_ENV,
    ApiSettings,
)
from adstream.ingest.keys import KeyConfigError
from adstream.kafka.java_properties import JavaPropertiesError
from adstream.kafka.keystores import StoreError
from adstream.kafka.load import load_settings
from adstream.kafka.topic_check import TopicCheckError, TopicCheckUnavailableError, check_topics
from adstream.local.defaults import NoKafkaSettingsError, local_client_properties
from adstream.logs import GRANIAN_LOG_CONFIG, configure_logging

EXIT_BAD_CONFIG = 2
APP_FACTORY = "adstream.api:create_api_from_env"
DB_URL_ENV = "ADSTREAM_API_DB_URL"


def serve(
    kafka_config: Annotated[
        Path | None,
        typer.Option(
            "--kafka-config",
            help="Java client.properties or dotenv file; default: ADSTREAM_KAFKA_* variables, "
            "else the local broker over mutual TLS as adstream-api.",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(envvar="ADSTREAM_API_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(envvar="ADSTREAM_API_PORT", help="Port to listen on.")
    ] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, envvar="ADSTREAM_API_WORKERS", help="Worker processes.")
    ] = 2,
    db: Annotated[
        str | None,
        typer.Option(
            envvar=DB_URL_ENV,
            show_envvar=True,
            help="Count database for /ads/{adId}/stats, /ads/top and /dashboard (prefer "
            "the variable for a URL with a password: a command line is visible to all users).",
        ),
    ] = None,
) -> None:
    """Serve the ingest API: a 2xx means Kafka acknowledged the event."""
    if kafka_config is None and not os.environ.get("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS"):
        try:  # the MSK-like default: the local broker, mutual TLS as adstream-api
            kafka_config = local_client_properties("tls")
        except NoKafkaSettingsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_BAD_CONFIG) from exc
    try:
        settings = load_settings(kafka_config)
    except (ValidationError, JavaPropertiesError, StoreError, OSError) as exc:
        source = kafka_config or "ADSTREAM_KAFKA_* environment variables"
        typer.echo(f"invalid Kafka settings in {source}: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_CONFIG) from exc
    try:
        wanted = DeploymentSettings().topic_requirements()
        if wanted is not None:
            check_topics(settings, [ApiSettings().topic], wanted)
    except TopicCheckUnavailableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (TopicCheckError, ValidationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_CONFIG) from exc
    _check_auth(host)
    _check_schema_settings()
    if kafka_config is not None:
        os.environ[KAFKA_CONFIG_ENV] = str(kafka_config.resolve())
    if db is not None:
        os.environ[DB_URL_ENV] = db
    run_server(APP_FACTORY, host, port, workers)


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _check_auth(host: str) -> None:
    """Exit 2 before any worker starts if the auth settings cannot work.

    Unauthenticated mode is for local development: refused on a non-loopback address.
    """
    try:
        api = ApiSettings()
        if api.auth == "none" and host not in LOOPBACK:
            raise KeyConfigError(
                f"ADSTREAM_API_AUTH=none serves anyone: it is only allowed on a loopback "
                f"address, not {host} (create keys with `adstream keys create` and set "
                f"ADSTREAM_API_AUTH=keys)"
            )
        if api.auth == "keys":
            api.key_ring()
            if api.limits_url is not None:
                _check_limits_store(api)
    except (ValidationError, KeyConfigError) as exc:
        typer.echo(f"invalid API auth settings: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_CONFIG) from exc


def _check_limits_store(api: ApiSettings) -> None:
    """The shared rate-limit store must accept our credentials (else exit 2); if it does not
    answer, start anyway: requests that need it get 503 until it does."""
    from adstream.ingest.limits_redis import RedisLimits
    from adstream.ingest.limits_store import LimitsStoreConfigError, LimitsStoreDownError

    async def check() -> None:
        limits = RedisLimits.from_settings(api)
        try:
            await limits.check()
        finally:
            await limits.aclose()

    try:
        asyncio.run(check())
    except LimitsStoreConfigError as exc:
        raise KeyConfigError(f"ADSTREAM_API_LIMITS_URL: {exc}") from exc
    except LimitsStoreDownError as exc:
        typer.echo(f"warning: {exc}; starting anyway (503 until it answers)", err=True)


def _check_schema_settings() -> None:
    """Register the event schema once before any worker starts: a registry that refuses it
    (incompatible) or cannot be reached stops `serve` with exit code 2, naming the cause."""
    from adstream.events.formats import RegistryUnavailableError
    from adstream.kafka.schema_settings import SchemaSettings, event_encoder

    try:
        event_encoder(SchemaSettings(), ApiSettings().topic)
    except (ValidationError, ValueError, RegistryUnavailableError, RuntimeError) as exc:
        typer.echo(f"error: event format / schema registry: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_CONFIG) from exc


RSGI_FACTORY = "adstream.ingest.rsgi:create_from_env"


def run_server(app_factory: str, host: str, port: int, workers: int) -> None:
    """Serve `app_factory` ("module:function", an ASGI app) with Granian until stopped.

    With ``ADSTREAM_API_INTERFACE=rsgi`` (the default) each worker runs the app behind
    `adstream.ingest.rsgi`'s front (hot routes without ASGI, the rest bridged to it).
    The workers share two fresh directories: Prometheus' multiprocess files and the
    auth state (token buckets, URL nonces; `limits_store`).
    """
    interface = Interfaces.ASGI
    target = app_factory
    if ApiSettings().interface == "rsgi":
        os.environ[APP_FACTORY_ENV] = app_factory
        interface, target = Interfaces.RSGI, RSGI_FACTORY
    metrics_dir = tempfile.mkdtemp(prefix="adstream-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    state_dir = tempfile.mkdtemp(prefix="adstream-auth-")
    os.environ.setdefault(STATE_DIR_ENV, state_dir)
    try:
        Granian(
            target,
            factory=True,
            address=host,
            port=port,
            interface=interface,
            workers=workers,
            loop=Loops.uvloop,
            log_access=False,
            websockets=False,  # the API has none: an upgrade request is plain HTTP (404)
            # A worker whose producer failed fatally exits; it is replaced (a crash loop
            # stops the server, so the platform restarts it).
            respawn_failed_workers=True,
            log_dictconfig=GRANIAN_LOG_CONFIG,
        ).serve()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        shutil.rmtree(state_dir, ignore_errors=True)


def main() -> None:
    """Run `serve` on its own (`python -m adstream.ingest.cli`) until the CLI mounts it."""
    configure_logging()
    typer.run(serve)


if __name__ == "__main__":
    main()
