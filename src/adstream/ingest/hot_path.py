"""The two hot routes, served without FastAPI's per-request machinery.

`POST /ads/{adId}/impression` and `/click` are most of the traffic. FastAPI spends
more CPU solving their dependencies and parameters than the service spends creating
and publishing the event, so this ASGI middleware answers them directly through the
same `IngestService`. Only a valid request takes this path: anything else (a bad adId,
a bad `Idempotency-Key`, another route) falls through to the FastAPI routes, which
define the API, its OpenAPI document and its error answers. The answers here are the
same as theirs: tests run every route case through both.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from adstream.events import AD_ID_PATTERN, EventType
from adstream.ingest.errors import PublishError
from adstream.ingest.routes import recorded_text
from adstream.ingest.service import IngestService, InvalidIdempotencyKeyError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HOT = re.compile(r"/ads/(" + AD_ID_PATTERN.strip("^$") + r")/(impression|click)")
_TYPES = {"impression": EventType.IMPRESSION, "click": EventType.CLICK}
_IDEMPOTENCY_HEADER = b"idempotency-key"


class HotPathCount:
    """How many requests the hot path answered itself (shows that it is on, and works)."""

    __slots__ = ("served",)

    def __init__(self) -> None:
        self.served = 0


class HotPath:
    """ASGI middleware: publish and answer hot-route requests, pass everything else on."""

    def __init__(
        self,
        app: ASGIApp,
        service: IngestService,
        routes: dict[str, object],
        retry_after_s: int,
        count: HotPathCount,
    ) -> None:
        self.app = app
        self.service = service
        self.routes = routes  # "impression"/"click" -> the FastAPI route (for metrics labels)
        self.retry_after = str(retry_after_s).encode()
        self.count = count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _HOT.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        ad_id, kind = match.group(1), match.group(2)
        key = next((v for k, v in scope["headers"] if k == _IDEMPOTENCY_HEADER), None)
        try:
            event = self.service.new_event(
                ad_id, _TYPES[kind], key.decode("latin-1") if key is not None else None
            )
        except (InvalidIdempotencyKeyError, ValueError):
            await self.app(scope, receive, send)  # FastAPI phrases the 422
            return
        scope["route"] = self.routes[kind]
        self.count.served += 1
        try:
            await self.service.publish(event)
        except PublishError as exc:
            body = orjson.dumps({"error": exc.reason, "detail": str(exc)})
            headers = [(b"content-type", b"application/json")]
            if exc.retryable:
                headers.append((b"retry-after", self.retry_after))
            await _answer(send, exc.status, headers, body)
            return
        text = recorded_text(event.type, ad_id).encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"x-event-id", str(event.event_id).encode()),
        ]
        await _answer(send, 200, headers, text)


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
