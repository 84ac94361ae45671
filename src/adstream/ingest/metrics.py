"""Prometheus metrics of the API: requests, latency, produce acks, queue depth, failures.

With several worker processes, `PROMETHEUS_MULTIPROC_DIR` must be set before the workers
start (the `serve` command does it); each worker then writes its samples to files there
and `/metrics` sums them, so any worker answers for all.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from adstream.ingest.config import MULTIPROC_ENV

# Label values come from fixed sets, never from the client: any other method string or
# an unmatched raw path would otherwise make a new time series per request.
KNOWN_METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "<unmatched>"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def method_label(method: str) -> str:
    """The request method if it is a standard one, else ``other``."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


def route_label(scope: Scope) -> str:
    """The matched route's template (``/ads/{adId}/stats``), else ``<unmatched>``."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class Metrics:
    """The service's metrics, registered in `registry` (a fresh one per app keeps tests apart)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "adstream_http_requests", "HTTP requests", ["method", "route", "status"], registry=reg
        )
        self.latency = Histogram(
            "adstream_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.ack_latency = Histogram(
            "adstream_produce_ack_seconds",
            "Time from produce to the broker's ack of every event of one publish call",
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.delivery_failures = Counter(
            "adstream_delivery_failures",
            "Events Kafka did not acknowledge",
            ["reason"],
            registry=reg,
        )
        self.events_published = Counter(
            "adstream_events_published", "Events acknowledged by Kafka", registry=reg
        )
        self.queue = Gauge(
            "adstream_producer_queue_depth",
            "Messages waiting in the local producer queue",
            multiprocess_mode="livesum",
            registry=reg,
        )

    # PublishObserver
    def acked(self, count: int) -> None:
        self.events_published.inc(count)

    def completed(self, seconds: float) -> None:
        self.ack_latency.observe(seconds)

    def failed(self, reason: str) -> None:
        self.delivery_failures.labels(reason).inc()

    def queue_depth(self, depth: int) -> None:
        self.queue.set(depth)

    def render(self) -> tuple[bytes, str]:
        """The exposition text: summed over all workers in multiprocess mode."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """A plain ASGI middleware (cheaper than BaseHTTPMiddleware) counting each request
        by its route template, so `/ads/{adId}/impression` is one series, not one per ad,
        and by a bounded method label."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                route = route_label(scope)
                method = method_label(scope["method"])
                self.requests.labels(method, route, str(status)).inc()
                self.latency.labels(method, route).observe(time.perf_counter() - started)

        return measured
