"""HTTP routes: thin adapters from requests to `IngestService` calls.

Every 2xx here is sent after Kafka acknowledged the event; publish failures propagate
as `PublishError` and become 503 in `app.py`'s exception handlers. With API keys on,
each ingest route asks the `Gate` (auth.py) in the order its docstring gives; refusals
propagate as `AuthError` (401/403/409/429).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPBearer

from adstream.events import AD_ID_PATTERN, MAX_BATCH_EVENTS, AdEvent, EventType
from adstream.ingest import batch
from adstream.ingest.auth import Caller, Gate
from adstream.ingest.errors import PublishError
from adstream.ingest.health import ReadinessProbe
from adstream.ingest.schemas import Accepted, ErrorBody, Health, batch_request_body
from adstream.ingest.service import IngestService

# The smallest transparent 1x1 GIF (43 bytes).
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
EVENT_ID_HEADER = "X-Event-Id"


def recorded_text(event_type: EventType, ad_id: str) -> str:
    """The seed's answer: ``Impression recorded for AD123``."""
    return f"{event_type.value.capitalize()} recorded for {ad_id}"


_UNAVAILABLE = {"model": ErrorBody, "description": "Kafka did not acknowledge; retry later"}
_INVALID = {"model": ErrorBody, "description": "invalid input"}
ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "no valid API key or signed URL (keys mode)"},
    403: {"model": ErrorBody, "description": "outside the key's scopes"},
    422: _INVALID,
    429: {"model": ErrorBody, "description": "the key's rate limit; see Retry-After"},
    503: _UNAVAILABLE,
}
SIGNED_ERRORS = {**ERRORS, 409: {"model": ErrorBody, "description": "signed URL already used"}}

router = APIRouter()
_bearer = HTTPBearer(
    auto_error=False,
    description="an API key (`adstream keys create`); not needed with ADSTREAM_API_AUTH=none",
)
"""Declares the key in the OpenAPI document; the `Gate` reads the header itself."""


class SignedQuery:
    """The signed-URL parameters, declared for the OpenAPI document (`signing.py`)."""

    def __init__(
        self,
        kid: Annotated[str | None, Query(description="signed URL: key id")] = None,
        exp: Annotated[str | None, Query(description="signed URL: expiry, epoch s")] = None,
        nonce: Annotated[str | None, Query(description="signed URL: one-time nonce")] = None,
        sig: Annotated[str | None, Query(description="signed URL: HMAC-SHA256")] = None,
    ) -> None:
        pass


_AUTH = [Security(_bearer)]
_SIGNED_AUTH = [Security(_bearer), Depends(SignedQuery)]


async def get_service(request: Request) -> IngestService:
    service: IngestService = request.app.state.service
    return service


async def get_readiness(request: Request) -> ReadinessProbe:
    probe: ReadinessProbe = request.app.state.readiness
    return probe


Service = Annotated[IngestService, Depends(get_service)]
AdId = Annotated[str, Path(pattern=AD_ID_PATTERN, description="the ad's id")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="a client retry with the same key carries the same eventId",
    ),
]


def _gate(request: Request) -> Gate | None:
    gate: Gate | None = request.app.state.gate
    return gate


async def _record_one(
    request: Request,
    service: IngestService,
    ad_id: str,
    event_type: EventType,
    key: str | None = None,
) -> AdEvent:
    """Authenticate, validate, admit and publish one event (the hot path's order too)."""
    gate = _gate(request)
    if gate is None:
        event = service.new_event(ad_id, event_type, key)
        await service.publish(event)
        return event
    authorization = request.headers.get("authorization")
    caller = gate.single(authorization, request.query_params, event_type, ad_id)
    event = service.new_event(ad_id, event_type, caller.event_key or key)
    await gate.admit(caller, [event])
    await _publish_admitted(gate, caller, service, event)
    return event


async def _publish_admitted(
    gate: Gate, caller: Caller, service: IngestService, event: AdEvent
) -> None:
    try:
        await service.publish(event, caller.name)
    except PublishError:
        await gate.release(caller)  # not counted: the same signed URL may be retried
        raise


async def _record(
    request: Request, service: IngestService, ad_id: str, event_type: EventType, key: str | None
) -> PlainTextResponse:
    event = await _record_one(request, service, ad_id, event_type, key)
    return PlainTextResponse(
        recorded_text(event_type, ad_id), headers={EVENT_ID_HEADER: str(event.event_id)}
    )


@router.post(
    "/ads/{adId}/impression",
    response_class=PlainTextResponse,
    responses=SIGNED_ERRORS,
    dependencies=_SIGNED_AUTH,
    summary="Record one impression; answers after Kafka acknowledged it",
)
async def impression(
    request: Request,
    service: Service,
    adId: AdId,  # noqa: N803  (the seed's path variable name, shown in the docs)
    idempotency_key: IdempotencyKey = None,
) -> PlainTextResponse:
    return await _record(request, service, adId, EventType.IMPRESSION, idempotency_key)


@router.post(
    "/ads/{adId}/click",
    response_class=PlainTextResponse,
    responses=SIGNED_ERRORS,
    dependencies=_SIGNED_AUTH,
    summary="Record one click; answers after Kafka acknowledged it",
)
async def click(
    request: Request,
    service: Service,
    adId: AdId,  # noqa: N803
    idempotency_key: IdempotencyKey = None,
) -> PlainTextResponse:
    return await _record(request, service, adId, EventType.CLICK, idempotency_key)


@router.post(
    "/events",
    response_model=Accepted,
    responses={**ERRORS, 413: _INVALID, 415: _INVALID},
    dependencies=_AUTH,
    openapi_extra=batch_request_body(),
    summary="Record a batch (JSON array or NDJSON); all validated first, then all acknowledged",
)
async def events(
    request: Request, service: Service, idempotency_key: IdempotencyKey = None
) -> Accepted:
    gate = _gate(request)
    caller = gate.bearer(request.headers.get("authorization")) if gate is not None else None
    batch.media_type(request.headers.get("content-type"))
    body = await read_limited(request, batch.MAX_BODY_BYTES)
    entries = batch.decode(body, request.headers.get("content-type"), MAX_BATCH_EVENTS)
    parsed = service.parse_batch(entries, idempotency_key)
    if gate is None or caller is None:
        await service.record_batch(parsed)
    else:
        await gate.admit(caller, parsed)
        await service.record_batch(parsed, caller.name)
    return Accepted(accepted=len(parsed))


@router.get(
    "/pixel.gif",
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}}, **SIGNED_ERRORS},
    dependencies=_SIGNED_AUTH,
    summary="Tracking pixel: records an impression, then returns a 1x1 GIF",
)
async def pixel(
    request: Request,
    service: Service,
    ad_id: Annotated[str, Query(alias="adId", pattern=AD_ID_PATTERN)],
) -> Response:
    event = await _record_one(request, service, ad_id, EventType.IMPRESSION)
    headers = {**NO_CACHE, EVENT_ID_HEADER: str(event.event_id)}
    return Response(PIXEL_GIF, media_type="image/gif", headers=headers)


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health}},
    summary="Liveness: 503 once the Kafka producer failed fatally (replace the process)",
)
async def healthz(request: Request) -> JSONResponse:
    fatal = request.app.state.publisher.fatal_error
    if fatal is not None:
        return JSONResponse(Health(status="fatal", detail=fatal).model_dump(), status_code=503)
    return JSONResponse(Health(status="ok").model_dump())


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health}},
    summary="Kafka reachable and topic present",
)
async def readyz(
    request: Request, probe: Annotated[ReadinessProbe, Depends(get_readiness)]
) -> JSONResponse:
    fatal = request.app.state.publisher.fatal_error
    if fatal is not None:
        body = Health(status="not ready", detail=f"producer failed fatally: {fatal}")
        return JSONResponse(body.model_dump(), status_code=503)
    result = await probe.check()
    body = Health(status="ready" if result.ready else "not ready", detail=result.detail)
    return JSONResponse(body.model_dump(), status_code=200 if result.ready else 503)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    payload, content_type = request.app.state.metrics.render()
    return Response(payload, media_type=content_type)


async def read_limited(request: Request, limit: int) -> bytes:
    """The body; `BatchTooLargeError` as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise batch.BatchTooLargeError(f"the body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise batch.BatchTooLargeError(f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
