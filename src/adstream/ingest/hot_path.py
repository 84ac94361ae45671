"""The two hot routes, served without FastAPI's per-request machinery.

`POST /ads/{adId}/impression` and `/click` are most of the traffic. FastAPI spends
more CPU in its middleware stack and in solving their dependencies and parameters than
the service spends creating and publishing the event, so `IngestApp` hands them here
first, and this answers them directly through the same `IngestService`. Only a valid
request takes this path: anything else (a bad adId, a bad `Idempotency-Key`, another
route) falls through to the FastAPI routes, which define the API, its OpenAPI document
and its error answers. The answers here are the same as theirs: tests run every route
case through both.
"""

from __future__ import annotations

import re
import time

import orjson

from adstream.events import AD_ID_PATTERN, EventType
from adstream.ingest.errors import PublishError
from adstream.ingest.metrics import Metrics, Scope, Send
from adstream.ingest.routes import recorded_text
from adstream.ingest.service import IngestService, InvalidIdempotencyKeyError

_HOT = re.compile(r"/ads/(" + AD_ID_PATTERN.strip("^$") + r")/(impression|click)")
_TYPES = {"impression": EventType.IMPRESSION, "click": EventType.CLICK}
_IDEMPOTENCY_HEADER = b"idempotency-key"


class HotPath:
    """Publish and answer hot-route requests; say `False` for anything else.

    Called by `IngestApp` before Starlette's middleware stack (error handling, telemetry,
    body limits and the metrics middleware cost more than the route itself), so it
    records its requests in the metrics itself, under the same labels.
    """

    def __init__(
        self,
        service: IngestService,
        metrics: Metrics,
        routes: dict[str, str],
        retry_after_s: int,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.routes = routes  # "impression"/"click" -> the route template (metrics label)
        self.retry_after = str(retry_after_s).encode()
        self.served = 0  # requests answered here (shows that the hot path is on, and works)

    async def handle(self, scope: Scope, send: Send) -> bool:
        """Answer the request if it is a valid hot one; `False` leaves it to the routes."""
        if scope["method"] != "POST":
            return False
        match = _HOT.fullmatch(scope["path"])
        if match is None:
            return False
        started = time.perf_counter()
        ad_id, kind = match.group(1), match.group(2)
        key = next((v for k, v in scope["headers"] if k == _IDEMPOTENCY_HEADER), None)
        try:
            event = self.service.new_event(
                ad_id, _TYPES[kind], key.decode("latin-1") if key is not None else None
            )
        except (InvalidIdempotencyKeyError, ValueError):
            return False  # FastAPI phrases the 422
        self.served += 1
        status = 500
        try:
            try:
                await self.service.publish(event)
            except PublishError as exc:
                status = exc.status
                body = orjson.dumps({"error": exc.reason, "detail": str(exc)})
                headers = [(b"content-type", b"application/json")]
                if exc.retryable:
                    headers.append((b"retry-after", self.retry_after))
                await _answer(send, status, headers, body)
                return True
            status = 200
            text = recorded_text(event.type, ad_id).encode()
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"x-event-id", str(event.event_id).encode()),
            ]
            await _answer(send, 200, headers, text)
            return True
        finally:
            self.metrics.observe_request(
                "POST", self.routes[kind], status, time.perf_counter() - started
            )


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
