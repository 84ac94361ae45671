"""The two hot routes, served without FastAPI's per-request machinery.

`POST /ads/{adId}/impression` and `/click` are most of the traffic. FastAPI spends
more CPU in its middleware stack and in solving their dependencies and parameters than
the service spends creating and publishing the event, so the server front hands them
here first, and this answers them directly through the same `IngestService`. Only a valid
request takes this path: anything else (a bad adId, a bad `Idempotency-Key`, another
route) falls through to the FastAPI routes, which define the API, its OpenAPI document
and its error answers. The answers here are the same as theirs: tests run every route
case through both. With API keys on, the `Gate` runs here in the same order as in the
routes (authenticate, validate, admit, publish); its refusals are answered here, since
admission spends tokens and nonces and must not run twice.

`HotPath.answer` decides; two fronts send its answer: `IngestApp` (ASGI, used by tests
and `ADSTREAM_API_INTERFACE=asgi`) through `handle`, and `rsgi.RsgiFront` (what
`adstream serve` runs) with Granian's `response_bytes`, without ASGI messages.
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
_JSON = ("content-type", "application/json")
_TEXT = ("content-type", "text/plain; charset=utf-8")

Headers = list[tuple[str, str]]
Answer = tuple[int, Headers, bytes]
"""Status, headers (lower-case names, without content-length) and body."""


def hot_route(method: str, path: str) -> tuple[str, str] | None:
    """(adId, "impression" or "click") for a request the hot path may answer, else None."""
    if method != "POST":
        return None
    match = _HOT.fullmatch(path)
    return None if match is None else (match.group(1), match.group(2))


class HotPath:
    """Publish and answer hot-route requests; say `None` for anything else.

    Runs before Starlette's middleware stack (error handling, telemetry, body limits and
    the metrics middleware cost more than the route itself), so it records its requests
    in the metrics itself, under the same labels.
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
        self.retry_after = str(retry_after_s)
        self.served = 0  # requests answered here (shows that the hot path is on, and works)

    async def answer(
        self,
        ad_id: str,
        kind: str,
        idempotency_key: str | None,
        authorization: str | None,
        query: str,
    ) -> Answer | None:
        """The answer to `POST /ads/{ad_id}/{kind}` (see `hot_route`), or None to leave the
        request to the FastAPI routes (which phrase the 422s). Header values and the query
        string are as sent, decoded as latin-1."""
        started = time.perf_counter()
        key = idempotency_key
        caller: Caller | None = None
        gate = self.gate
        if gate is not None:
            try:
                caller = gate.single(authorization, _query(query), _TYPES[kind], ad_id)
            except AuthError as exc:
                return self._refuse(exc, kind, started)
            key = caller.event_key or key
        try:
            event = self.service.new_event(ad_id, _TYPES[kind], key)
        except (InvalidIdempotencyKeyError, ValueError):
            return None  # FastAPI phrases the 422
        if gate is not None and caller is not None:
            try:
                await gate.admit(caller, [event])
            except AuthError as exc:
                return self._refuse(exc, kind, started)
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
                headers = [_JSON]
                if exc.retryable:
                    headers.append(("retry-after", self.retry_after))
                return status, headers, body
            status = 200
            text = recorded_text(event.type, ad_id).encode()
            return 200, [_TEXT, ("x-event-id", str(event.event_id))], text
        finally:
            self.metrics.observe_request(
                "POST", self.routes[kind], status, time.perf_counter() - started
            )

    def _refuse(self, exc: AuthError, kind: str, started: float) -> Answer:
        """Answer a refusal as the routes' `AuthError` handler does."""
        self.served += 1
        body = orjson.dumps({"error": exc.error, "detail": exc.detail})
        headers = [_JSON, *((k.lower(), v) for k, v in exc.headers().items())]
        self.metrics.observe_request(
            "POST", self.routes[kind], exc.status, time.perf_counter() - started
        )
        return exc.status, headers, body

    async def handle(self, scope: Scope, send: Send) -> bool:
        """The ASGI front: answer the request if it is a valid hot one; `False` leaves it
        to the routes."""
        route = hot_route(scope["method"], scope["path"])
        if route is None:
            return False
        answer = await self.answer(
            route[0],
            route[1],
            _header(scope, _IDEMPOTENCY_HEADER),
            _header(scope, _AUTHORIZATION_HEADER),
            scope.get("query_string", b"").decode("latin-1"),
        )
        if answer is None:
            return False
        status, headers, body = answer
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        return True


def _header(scope: Scope, name: bytes) -> str | None:
    raw = next((v for k, v in scope["headers"] if k == name), None)
    return raw.decode("latin-1") if raw is not None else None


def _query(text: str) -> dict[str, str]:
    """The query parameters as Starlette reads them (latin-1, the last value wins).

    A signed URL's parameters need no unescaping (digits, URL-safe base64), so a plain
    split is used when there is nothing to unescape: `parse_qsl` costs more than the
    signature check.
    """
    if not text:
        return {}
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    params: dict[str, str] = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params
