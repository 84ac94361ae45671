"""The API's composition root: the one place that reads settings and wires objects together.

`create_app` takes the settings as arguments (tests hand in the real broker's);
`adstream.api` adds the stats routes and is what each server worker process calls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from confluent_kafka import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from adstream.events import InvalidEventError
from adstream.events.formats import EventEncoder
from adstream.ingest import batch
from adstream.ingest.auth import AuthError, Gate
from adstream.ingest.config import ApiSettings
from adstream.ingest.errors import PublishError
from adstream.ingest.health import ReadinessProbe
from adstream.ingest.hot_path import HotPath
from adstream.ingest.limits_store import LimitsStore, SharedLimits
from adstream.ingest.metrics import FLUSH_S, Metrics, Receive, Scope, Send
from adstream.ingest.publisher import AdEventPublisher
from adstream.ingest.routes import router
from adstream.ingest.service import IngestService, InvalidBatchError, InvalidIdempotencyKeyError
from adstream.kafka.factory import make_producer
from adstream.kafka.schema_settings import SchemaSettings, event_encoder
from adstream.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)


def _error(status: int, error: str, detail: object = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def _install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PublishError)
        response = _error(exc.status, exc.reason, str(exc))
        if exc.retryable:
            response.headers["Retry-After"] = str(retry_after_s)
        return response

    async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return _error(422, "invalid_request", detail)

    async def invalid_batch(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidBatchError)
        return _error(422, "invalid_events", exc.errors)

    async def invalid_input(_: Request, exc: Exception) -> JSONResponse:
        return _error(422, "invalid_request", str(exc))

    async def refused(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthError)
        response = _error(exc.status, exc.error, exc.detail)
        response.headers.update(exc.headers())
        return response

    async def too_large(_: Request, exc: Exception) -> JSONResponse:
        return _error(413, "too_large", str(exc))

    async def unsupported(_: Request, exc: Exception) -> JSONResponse:
        return _error(415, "unsupported_media_type", str(exc))

    app.add_exception_handler(PublishError, unavailable)
    app.add_exception_handler(AuthError, refused)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(InvalidBatchError, invalid_batch)
    for kind in (InvalidEventError, InvalidIdempotencyKeyError, batch.MalformedBatchError):
        app.add_exception_handler(kind, invalid_input)
    app.add_exception_handler(batch.BatchTooLargeError, too_large)
    app.add_exception_handler(batch.UnsupportedMediaTypeError, unsupported)


def create_app(
    kafka: KafkaSettings,
    api: ApiSettings | None = None,
    on_fatal: Callable[[], None] | None = None,
    encoder: EventEncoder | None = None,
) -> FastAPI:
    """The FastAPI app publishing to Kafka as configured; the producer starts with the app.

    `on_fatal` runs (in the event loop) once the producer failed fatally; a served
    worker passes `exit_worker`, so the server replaces it. The wire format comes from
    `encoder`, else from ``ADSTREAM_SCHEMA_*`` (default JSON): a registry format registers
    its schema here, so an incompatible one stops the start (`IncompatibleSchemaError`).
    """
    api = api or ApiSettings()
    encoder = encoder or event_encoder(SchemaSettings(), api.topic)
    metrics = Metrics()
    errors = _ErrorCallback()
    callbacks: dict[str, object] = {"error_cb": errors}
    if api.stats_interval_ms:
        callbacks["stats_cb"] = metrics.producer.on_stats
    producer = make_producer(kafka, {**api.producer_overrides(), **callbacks})
    publisher = AdEventPublisher(producer, api.topic, metrics, on_fatal, encoder)
    errors.publisher = publisher
    gate, state_dir = _gate(api, metrics)
    if gate is None:
        log.warning("ADSTREAM_API_AUTH=none: anyone who reaches this API can send events")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        publisher.start()
        flushing = asyncio.create_task(_flush_metrics(metrics))
        try:
            yield
        finally:
            flushing.cancel()
            remaining = await publisher.close(api.shutdown_flush_s)
            if not remaining:
                log.info("Kafka producer closed: every queued event was settled")
            metrics.flush()
            if gate is not None:
                await gate.limits.aclose()
            if state_dir is not None:
                shutil.rmtree(state_dir, ignore_errors=True)

    app = IngestApp(
        title="adstream ingest API",
        version="1",
        description="Records ad impressions and clicks in Kafka; a 2xx means Kafka has it.",
        lifespan=lifespan,
    )
    service = IngestService(publisher, window=api.event_window)
    app.state.service = service
    app.state.readiness = ReadinessProbe(producer, api.topic)
    app.state.metrics = metrics
    app.state.publisher = publisher
    app.state.gate = gate
    app.include_router(router)
    _install_error_handlers(app, api.retry_after_s)
    if api.hot_path:
        app.hot = HotPath(
            service,
            metrics,
            routes={kind: f"/ads/{{adId}}/{kind}" for kind in ("impression", "click")},
            retry_after_s=api.retry_after_s,
            gate=gate,
        )
    app.state.hot_path = app.hot
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    return app


def _gate(api: ApiSettings, metrics: Metrics) -> tuple[Gate | None, Path | None]:
    """The `Gate` of keys mode (None without auth), and a state directory to remove after.

    Raises `keys.KeyConfigError` when the keys or the pepper cannot be read.
    """
    if api.auth == "none":
        return None, None
    keys = api.key_ring()
    if api.limits_url is not None:
        from adstream.ingest.limits_redis import RedisLimits  # only this mode needs redis-py

        limits = RedisLimits.from_settings(api)  # shared by every server on that Redis
        return Gate(keys, limits, metrics, api.max_url_ttl_s), None
    owned = None if api.state_dir else Path(tempfile.mkdtemp(prefix="adstream-auth-"))
    local: LimitsStore = SharedLimits(api.state_dir or owned or Path())
    return Gate(keys, local, metrics, api.max_url_ttl_s), owned


FATAL_EXIT_DELAY_S = 1.0
"""Time for the requests waiting on the failed producer to get their 503 before the exit."""


def exit_worker() -> None:
    """Stop this server worker gracefully soon: granian respawns a worker that exits."""
    log.critical(
        "stopping this worker in %.0f s: its Kafka producer cannot recover", FATAL_EXIT_DELAY_S
    )
    asyncio.get_running_loop().call_later(FATAL_EXIT_DELAY_S, os.kill, os.getpid(), signal.SIGTERM)


async def _flush_metrics(metrics: Metrics) -> None:
    while True:
        await asyncio.sleep(FLUSH_S)
        metrics.flush()


class IngestApp(FastAPI):
    """The FastAPI app, with the hot routes answered before its middleware stack."""

    hot: HotPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot
        if hot is not None and scope["type"] == "http" and await hot.handle(scope, send):
            return
        await super().__call__(scope, receive, send)


class _ErrorCallback:
    """librdkafka's `error_cb`, bound to the publisher once it exists."""

    def __init__(self) -> None:
        self.publisher: AdEventPublisher | None = None

    def __call__(self, error: KafkaError) -> None:
        if self.publisher is not None:
            self.publisher.on_client_error(error)
        elif error.fatal():
            log.critical("Kafka producer failed fatally: %s", error)


class _MetricsMiddleware:
    """Adapter so Starlette's `add_middleware` can build `Metrics.middleware`."""

    def __init__(self, app: object, metrics: Metrics) -> None:
        self._inner = metrics.middleware(app)  # type: ignore[arg-type]

    async def __call__(self, scope: object, receive: object, send: object) -> None:
        await self._inner(scope, receive, send)  # type: ignore[arg-type]
