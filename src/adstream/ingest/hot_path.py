"""The two hot routes, served without FastAPI's per-request machinery.

`POST /ads/{adId}/impression` and `/click` are most of the traffic. FastAPI spends
more CPU in its middleware stack and in solving their dependencies and parameters than
the service spends creating and publishing the event, so `IngestApp` hands them here
first, and this answers them directly through the same `IngestService`. Only a valid
request takes this path: anything else (a bad adId, a bad `Idempotency-Key`, another
route) falls through to the FastAPI routes, which define the API, its OpenAPI document
and its error answers. The answers here are the same as theirs: tests run every route
case through both. With API keys on, the `Gate` runs here in the same order as in the
routes (authenticate, validate, admit, publish); its refusals are answered here, since
admission spends tokens and nonces and must not run twice.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qsl

import orjson

from adstream.events import AD_ID_PATTERN, EventType
from adstream.ingest.auth import AuthError, Caller, Gate
from adstream.ingest.errors import PublishError
from adstream.ingest.metrics import Metrics, Scope, Send
from adstream.ingest.routes import recorded_text
from adstream.ingest.service import IngestService, InvalidIdempotencyKeyError

_HOT = re.compile(r"/ads/(" + AD_ID_PATTERN.strip("^$") + r")/(impression|click)")
_TYPES = {"impression": EventType.IMPRESSION, "click": EventType.CLICK}
_IDEMPOTENCY_HEADER = b"idempotency-key"
_AUTHORIZATION_HEADER = b"authorization"


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
        gate: Gate | None = None,
    ) -> None:
        self.service = service
        self.gate = gate
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
        raw_key = _header(scope, _IDEMPOTENCY_HEADER)
        key = raw_key.decode("latin-1") if raw_key is not None else None
        caller: Caller | None = None
        gate = self.gate
        if gate is not None:
            try:
                caller = gate.single(
                    _text(_header(scope, _AUTHORIZATION_HEADER)), _query(scope), _TYPES[kind], ad_id
                )
            except AuthError as exc:
                return await self._refuse(send, exc, kind, started)
            key = caller.event_key or key
        try:
            event = self.service.new_event(ad_id, _TYPES[kind], key)
        except (InvalidIdempotencyKeyError, ValueError):
            return False  # FastAPI phrases the 422
        if gate is not None and caller is not None:
            try:
                await gate.admit(caller, [event])
            except AuthError as exc:
                return await self._refuse(send, exc, kind, started)
        self.served += 1
        status = 500
        try:
            try:
                await self.service.publish(event, caller.name if caller is not None else None)
            except PublishError as exc:
                if gate is not None and caller is not None:
                    await gate.release(caller)
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

    async def _refuse(self, send: Send, exc: AuthError, kind: str, started: float) -> bool:
        """Answer a refusal as the routes' `AuthError` handler does."""
        self.served += 1
        body = orjson.dumps({"error": exc.error, "detail": exc.detail})
        headers = [(b"content-type", b"application/json")]
        headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers().items()]
        await _answer(send, exc.status, headers, body)
        self.metrics.observe_request(
            "POST", self.routes[kind], exc.status, time.perf_counter() - started
        )
        return True


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope["headers"] if k == name), None)


def _text(raw: bytes | None) -> str | None:
    return raw.decode("latin-1") if raw is not None else None


def _query(scope: Scope) -> dict[str, str]:
    """The query parameters as Starlette reads them (latin-1, the last value wins).

    A signed URL's parameters need no unescaping (digits, URL-safe base64), so a plain
    split is used when there is nothing to unescape: `parse_qsl` costs more than the
    signature check.
    """
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return {}
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    params: dict[str, str] = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
