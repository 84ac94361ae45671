"""The HTTP service's composition root: ingestion plus, with a count database, the stats.

`adstream serve` runs `create_api_from_env` in each worker. Ingestion (`ingest`) and
the count queries (`aggregate`) do not know each other; this module puts them on one
FastAPI app, so `ingest` never imports `aggregate`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from adstream.aggregate.routes import install_stats
from adstream.aggregate.store_url import open_store
from adstream.ingest import heap
from adstream.ingest.app import create_app, exit_worker
from adstream.ingest.config import KAFKA_CONFIG_ENV, ApiSettings
from adstream.kafka.load import load_settings
from adstream.kafka.settings import KafkaSettings
from adstream.logs import configure_logging


def create_api(
    kafka: KafkaSettings, api: ApiSettings | None = None, on_fatal: Callable[[], None] | None = None
) -> FastAPI:
    api = api or ApiSettings()
    app = create_app(kafka, api, on_fatal)
    if api.db_url:
        install_stats(app, open_store(api.db_url))
    return app


def create_api_from_env() -> FastAPI:
    """For server workers: Kafka settings from `$ADSTREAM_KAFKA_CONFIG` (a file) or the env.

    Logging is set up again here: a spawned worker does not inherit the CLI's handlers.
    The worker's startup heap is frozen once the app is built (`heap`): only serving
    processes get those collector settings, never a test process building apps.
    """
    configure_logging()
    path = os.environ.get(KAFKA_CONFIG_ENV)
    settings = load_settings(Path(path) if path else None)
    app = create_api(settings, ApiSettings(), on_fatal=exit_worker)
    heap.settle_after_startup()
    return app
