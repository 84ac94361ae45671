"""Prometheus metrics of the API: requests, latency, produce acks, queue depth, failures.

With several worker processes, `PROMETHEUS_MULTIPROC_DIR` must be set before the workers
start (the `serve` command does it); each worker then writes its samples to files there
and `/metrics` sums them, so any worker answers for all.

Each multiprocess sample write takes a lock, a `getpid()` and an mmap write, several per
request: more than the request's own work on the hot path. So request and ack
observations are counted in memory on the event loop and written every `FLUSH_S` (and
before each `/metrics` answer): a scrape sees other workers' requests at most one second
late. Failures are written at once.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
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
from adstream.ingest.producer_stats import ProducerStats

# Label values come from fixed sets, never from the client: any other method string or
# an unmatched raw path would otherwise make a new time series per request.
KNOWN_METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "<unmatched>"

MAX_CALLER_LABELS = 100
OTHER_CALLER = "other"
CALLER_OUTCOMES = frozenset(
    {"accepted", "unauthenticated", "forbidden", "replayed", "rate_limited"}
)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
FLUSH_S = 1.0
QUEUE_DEPTH_EVERY_S = 0.1

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


class _Observations:
    """Histogram observations counted in memory: per-bucket counts and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.total += value
        self.counts[bisect_left(self.bounds, value)] += 1

    def write_to(self, child: Any) -> None:
        # prometheus-client keeps a histogram child as a sum plus one value per bucket
        # (`observe` increments the first bucket whose bound is >= the value); writing
        # the counts there gives exactly what one `observe` per value would
        # (tests/unit/ingest/test_metrics.py compares the two expositions).
        child._sum.inc(self.total)
        for bucket, count in zip(child._buckets, self.counts, strict=True):
            if count:
                bucket.inc(count)


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
        # Each worker has its own queue and answers 503 when *its* queue is full, so the
        # fullest live worker is what compares with ADSTREAM_API_QUEUE_MAX_MESSAGES.
        self.queue = Gauge(
            "adstream_producer_queue_depth",
            "Messages waiting in the fullest live worker's local producer queue",
            multiprocess_mode="livemax",
            registry=reg,
        )
        self.producer = ProducerStats(reg)
        # Callers are named in the key file (operators choose them, a client cannot make
        # new ones); a request without a valid key is "unknown"; at most MAX_CALLER_LABELS
        # names per process, the rest are "other".
        self.caller_requests = Counter(
            "adstream_api_caller_requests",
            "Ingest requests by caller (API key's caller name) and outcome",
            ["caller", "outcome"],
            registry=reg,
        )
        self.caller_events = Counter(
            "adstream_api_caller_events",
            "Events admitted (then published or failed) by caller",
            ["caller"],
            registry=reg,
        )
        self._callers: dict[tuple[str, str], list[int]] = {}
        self._caller_names: set[str] = set()
        self._bounds = (*_LATENCY_BUCKETS, float("inf"))
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latencies: dict[tuple[str, str], _Observations] = {}
        self._acks = _Observations(self._bounds)
        self._acked = 0
        self._queue_depth_at = 0.0

    # PublishObserver (called on the event loop, except `queue_depth`: the poll thread)
    def acked(self, count: int) -> None:
        self._acked += count

    def completed(self, seconds: float) -> None:
        self._acks.observe(seconds)

    def failed(self, reason: str) -> None:
        self.delivery_failures.labels(reason).inc()

    def queue_depth(self, depth: int) -> None:
        now = time.monotonic()
        if now - self._queue_depth_at >= QUEUE_DEPTH_EVERY_S:
            self._queue_depth_at = now
            self.queue.set(depth)

    def caller_outcome(self, caller: str, outcome: str, events: int) -> None:
        """Count one auth decision (the `auth.CallerObserver`), in memory until `flush`."""
        if caller not in self._caller_names:
            if len(self._caller_names) >= MAX_CALLER_LABELS:
                caller = OTHER_CALLER
            else:
                self._caller_names.add(caller)
        counts = self._callers.get((caller, outcome))
        if counts is None:
            counts = self._callers[(caller, outcome)] = [0, 0]
        counts[0] += 1
        counts[1] += events

    def flush(self) -> None:
        """Write what was counted in memory to the metrics (on the event loop)."""
        requests, self._requests = self._requests, {}
        latencies, self._latencies = self._latencies, {}
        acks, self._acks = self._acks, _Observations(self._bounds)
        acked, self._acked = self._acked, 0
        callers, self._callers = self._callers, {}
        for (caller, outcome), (requests_, events) in callers.items():
            self.caller_requests.labels(caller, outcome).inc(requests_)
            if outcome == "accepted" and events:
                self.caller_events.labels(caller).inc(events)
        for (method, route, status), count in requests.items():
            self.requests.labels(method, route, str(status)).inc(count)
        for (method, route), observations in latencies.items():
            observations.write_to(self.latency.labels(method, route))
        if acks.total or any(acks.counts):
            acks.write_to(self.ack_latency)
        if acked:
            self.events_published.inc(acked)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request (labels already bounded: see `method_label`)."""
        key = (method, route, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        observations = self._latencies.get((method, route))
        if observations is None:
            observations = self._latencies[(method, route)] = _Observations(self._bounds)
        observations.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text: summed over all workers in multiprocess mode."""
        self.flush()
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
                self.observe_request(
                    method_label(scope["method"]),
                    route_label(scope),
                    status,
                    time.perf_counter() - started,
                )

        return measured
