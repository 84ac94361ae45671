"""The RSGI front `adstream serve` runs under Granian: the hot routes straight from RSGI,
everything else through a small RSGI→ASGI bridge into the FastAPI app.

Granian's ASGI interface builds a scope dictionary and two message dictionaries per
request and hops through `receive`/`send` awaitables: on the hot path that was most of
what was left of Python's share after the middleware stack was bypassed. Under RSGI the
hot routes read Granian's scope object and answer with one `response_bytes`, through
the same `HotPath.answer` as the ASGI front (one code path for the answers).

Granian ships no RSGI→ASGI adapter, so `AsgiBridge` converts the rest (other routes,
invalid hot requests that get FastAPI's 422, /metrics, /events, OpenAPI): the scope as
Granian's ASGI interface builds it, the body streamed chunk by chunk, the response sent
in one piece or streamed. The app's lifespan (producer start, final flush on shutdown)
is driven by Granian's own `LifespanProtocol`, from `__rsgi_init__`/`__rsgi_del__`,
which Granian calls synchronously in each worker before serving and after it stopped
serving (like its ASGI worker does around the lifespan).

RSGI exposes header values only as visible-ASCII text: a value with other bytes
(obs-text) reads as missing. The hot path then leaves the request to the routes, and
the bridge passes such a value as the single byte 0x80, so the app still sees a
non-ASCII value there: a non-ASCII `Idempotency-Key` gets the same 422, a non-ASCII
`Authorization` the same 401 (with "must be 'Bearer <key>'" as detail instead of
"unknown or revoked API key"); no valid value of a header the API reads is non-ASCII.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from importlib import import_module
from typing import Any, Protocol, cast
from urllib.parse import quote

from granian.asgi import LifespanProtocol

from adstream.ingest.config import APP_FACTORY_ENV
from adstream.ingest.hot_path import HotPath, hot_route
from adstream.ingest.metrics import ASGIApp, Message

log = logging.getLogger(__name__)

_UNREADABLE = b"\x80"  # stands for a header value RSGI does not expose (see the docstring)
_ASGI = {"version": "3.0", "spec_version": "2.3"}
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


class RsgiHeaders(Protocol):
    """What is used of Granian's `RSGIHeaders`."""

    def __contains__(self, key: str) -> bool: ...
    def __iter__(self) -> Iterator[str]: ...
    def get(self, key: str, default: Any = None) -> Any: ...
    def get_all(self, key: str) -> list[str]: ...


class RsgiScope(Protocol):
    """What is used of Granian's RSGI HTTP scope (`granian.rsgi.Scope`)."""

    @property
    def proto(self) -> str: ...
    @property
    def http_version(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def client(self) -> str: ...
    @property
    def scheme(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query_string(self) -> str: ...
    @property
    def authority(self) -> str | None: ...
    @property
    def headers(self) -> RsgiHeaders: ...


class RsgiStream(Protocol):
    async def send_bytes(self, data: bytes) -> None: ...


class RsgiProtocol(Protocol):
    """What is used of Granian's `RSGIHTTPProtocol`."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def client_disconnect(self) -> None: ...
    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None: ...
    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None: ...
    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> RsgiStream: ...


class RsgiFront:
    """The RSGI application: hot routes answered here, the rest bridged to `app`."""

    def __init__(self, app: ASGIApp, hot: HotPath | None) -> None:
        self.app = app
        self.hot = hot
        self.bridge = AsgiBridge(app)

    async def __rsgi__(self, scope: RsgiScope, protocol: RsgiProtocol) -> None:
        hot = self.hot
        if hot is not None and scope.proto == "http":
            route = hot_route(scope.method, scope.path)
            if route is not None:
                headers = scope.headers
                key = headers.get("idempotency-key")
                readable = key is not None or "idempotency-key" not in headers
                authorization = None
                if hot.gate is not None:  # without keys mode nobody reads it
                    authorization = headers.get("authorization")
                    readable &= authorization is not None or "authorization" not in headers
                if readable:
                    answer = await hot.answer(
                        route[0], route[1], key, authorization, scope.query_string
                    )
                    if answer is not None:
                        protocol.response_bytes(*answer)
                        return
        await self.bridge(scope, protocol)

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.bridge.startup(loop)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.bridge.shutdown(loop)


class AsgiBridge:
    """Serves RSGI requests with an ASGI app, and runs its lifespan."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.lifespan = LifespanProtocol(app)  # type: ignore[no-untyped-call]

    def startup(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the lifespan's startup (the loop is not running yet); exit if it failed,
        as Granian's ASGI worker does."""
        loop.run_until_complete(self.lifespan.startup())  # type: ignore[no-untyped-call]
        if self.lifespan.interrupt:
            log.error("ASGI lifespan startup failed", exc_info=self.lifespan.exc)
            sys.exit(1)

    def shutdown(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the lifespan's shutdown: for the ingest app, the producer's final flush."""
        loop.run_until_complete(self.lifespan.shutdown())  # type: ignore[no-untyped-call]

    async def __call__(self, rsgi: RsgiScope, protocol: RsgiProtocol) -> None:
        scope = asgi_scope(rsgi)
        scope["state"] = self.lifespan.state.copy()
        exchange = _Exchange(protocol)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception:
            if not exchange.started:
                protocol.response_empty(500, [])
            raise
        if not exchange.started:  # an app must answer; Granian's ASGI front says 500 too
            protocol.response_empty(500, [])


def asgi_scope(rsgi: RsgiScope) -> dict[str, Any]:
    """The ASGI scope Granian's ASGI interface would build for this request."""
    headers = rsgi.headers
    raw_headers: list[tuple[bytes, bytes]] = []
    for name in headers:
        values = headers.get_all(name)
        encoded = name.encode("latin-1")
        if not values:  # none of them visible ASCII
            raw_headers.append((encoded, _UNREADABLE))
        raw_headers.extend((encoded, value.encode("latin-1")) for value in values)
    if "host" not in headers:  # HTTP/2: the authority, as Granian's ASGI scope has it
        raw_headers.insert(0, (b"host", (rsgi.authority or "").encode("latin-1")))
    path = rsgi.path
    return {
        "type": "http",
        "asgi": _ASGI,
        "http_version": rsgi.http_version,
        "server": _address(rsgi.server),
        "client": _address(rsgi.client),
        "scheme": rsgi.scheme,
        "method": rsgi.method,
        "root_path": "",
        "path": path,
        "raw_path": quote(path, safe=_PATH_SAFE).encode("ascii"),
        "query_string": rsgi.query_string.encode("utf-8"),
        "headers": raw_headers,
    }


def _address(text: str) -> tuple[str, int] | None:
    """ "127.0.0.1:8080" or "[::1]:8080" → (host, port)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


class _Exchange:
    """One request's ASGI `receive` and `send`, over the RSGI protocol."""

    __slots__ = (
        "body",
        "finished",
        "headers",
        "protocol",
        "received",
        "started",
        "status",
        "stream",
    )

    def __init__(self, protocol: RsgiProtocol) -> None:
        self.protocol = protocol
        self.body: AsyncIterator[bytes] | None = None
        self.received = False  # the whole request body was handed to the app
        self.started = False
        self.finished = False
        self.status = 500
        self.headers: list[tuple[str, str]] = []
        self.stream: RsgiStream | None = None

    async def receive(self) -> Message:
        if not self.received:
            if self.body is None:
                self.body = aiter(self.protocol)
            try:
                chunk = await anext(self.body)
            except StopAsyncIteration:
                self.received = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": bytes(chunk), "more_body": True}
        if not self.finished:
            await self.protocol.client_disconnect()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("the response was already started")
            self.started = True
            self.status = message["status"]
            self.headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers", ())
            ]
        elif kind == "http.response.body":
            if not self.started or self.finished:
                raise RuntimeError(f"unexpected {kind}")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if self.stream is None and not more:
                self.finished = True
                self.protocol.response_bytes(self.status, self.headers, bytes(body))
                return
            if self.stream is None:
                self.stream = self.protocol.response_stream(self.status, self.headers)
            if body:
                await self.stream.send_bytes(bytes(body))
            if not more:
                self.finished = True
        else:
            raise RuntimeError(f"unsupported ASGI message {kind!r}")


def front(app: ASGIApp) -> RsgiFront:
    """The RSGI front of an app made by `create_app` (or one adding routes to it)."""
    return RsgiFront(app, cast(HotPath | None, getattr(app, "hot", None)))


def create_from_env() -> RsgiFront:
    """For server workers: the app of the factory named in `$ADSTREAM_API_APP_FACTORY`,
    behind the RSGI front."""
    module, _, name = os.environ[APP_FACTORY_ENV].partition(":")
    factory = cast(Callable[[], ASGIApp], getattr(import_module(module), name))
    return front(factory())
