"""The RSGI→ASGI bridge: the scope as Granian's ASGI interface builds it, the body streamed
both ways, errors, and the lifespan run from `__rsgi_init__`/`__rsgi_del__`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from adstream.ingest.metrics import Message, Receive, Scope, Send
from adstream.ingest.rsgi import AsgiBridge, RsgiFront, asgi_scope
from tests.support.rsgi import FakeHeaders, FakeProtocol, FakeScope, RsgiTransport


def _serve(app: Any, scope: FakeScope, protocol: FakeProtocol) -> None:
    front = RsgiFront(app, None)
    loop = asyncio.new_event_loop()
    try:
        front.__rsgi_init__(loop)
        loop.run_until_complete(front.__rsgi__(scope, protocol))
        front.__rsgi_del__(loop)
    finally:
        loop.close()


def test_the_scope_is_what_granians_asgi_interface_gives() -> None:
    scope = FakeScope(
        method="POST",
        path="/ads/a b/impression",
        query_string="kid=k_1&sig=a%2Bb",
        headers=FakeHeaders(
            [(b"host", b"api:8080"), (b"x-a", b"1"), (b"x-a", b"2"), (b"idempotency-key", b"k")]
        ),
        http_version="2",
        server="[::1]:8080",
        client="10.0.0.7:51234",
        scheme="https",
    )
    assert asgi_scope(scope) == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "2",
        "server": ("::1", 8080),
        "client": ("10.0.0.7", 51234),
        "scheme": "https",
        "method": "POST",
        "root_path": "",
        "path": "/ads/a b/impression",
        "raw_path": b"/ads/a%20b/impression",
        "query_string": b"kid=k_1&sig=a%2Bb",
        "headers": [
            (b"host", b"api:8080"),
            (b"x-a", b"1"),
            (b"x-a", b"2"),
            (b"idempotency-key", b"k"),
        ],
    }


def test_http2_gets_the_authority_as_host() -> None:
    scope = FakeScope(method="GET", path="/", authority="api.example:443")
    assert asgi_scope(scope)["headers"] == [(b"host", b"api.example:443")]


def test_a_header_rsgi_cannot_read_reaches_the_app_as_non_ascii() -> None:
    """RSGI hides obs-text values; the app must still see *a* non-ASCII value, so it
    refuses it as it would the original (e.g. the 422 of a bad Idempotency-Key)."""
    headers = FakeHeaders([(b"host", b"h"), (b"idempotency-key", "cl\u00e9".encode("latin-1"))])
    scope = asgi_scope(FakeScope(method="POST", path="/", headers=headers))
    assert (b"idempotency-key", b"\x80") in scope["headers"]


def test_query_string_and_headers_reach_a_fastapi_route_as_over_asgi() -> None:
    app = FastAPI()

    @app.post("/echo/{name}")
    async def echo(request: Request, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "query": sorted(request.query_params.multi_items()),
            "key": request.headers.get("idempotency-key"),
            "all": request.headers.getlist("x-a"),
            "body": (await request.body()).decode(),
            "url": str(request.url),
        }

    request: dict[str, Any] = {
        "url": "/echo/a%20b?x=1&x=2&y=%41+b",
        "headers": [("Idempotency-Key", "k-1"), ("x-a", "1"), ("x-a", "2")],
        "content": b"hello",
    }
    with TestClient(app) as asgi:
        expected = asgi.post(**request)
    with httpx.Client(
        transport=RsgiTransport(RsgiFront(app, None)), base_url="http://testserver"
    ) as rsgi:
        got = rsgi.post(**request)
    assert (got.status_code, got.json()) == (expected.status_code, expected.json())
    assert got.json()["query"] == [["x", "1"], ["x", "2"], ["y", "A b"]]
    assert got.json()["all"] == ["1", "2"]


def test_a_large_body_is_streamed_chunk_by_chunk() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan
        while True:
            message = await receive()
            seen.append(message)
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d" % len(seen)})

    protocol = FakeProtocol([b"a" * 10, b"b" * 10, b"c"])
    _serve(app, FakeScope(method="POST", path="/"), protocol)
    assert [m["body"] for m in seen] == [b"a" * 10, b"b" * 10, b"c", b""]
    assert [m["more_body"] for m in seen] == [True, True, True, False]
    assert (protocol.status, protocol.body_bytes) == (200, b"4")


def test_a_streamed_response_is_streamed() -> None:
    app = FastAPI()

    @app.get("/s")
    async def stream() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"one,", b"two,", b"three"):
                yield part

        return StreamingResponse(parts(), media_type="text/plain")

    protocol = FakeProtocol()
    _serve(
        app, FakeScope(method="GET", path="/s", headers=FakeHeaders([(b"host", b"h")])), protocol
    )
    assert protocol.streamed
    assert (protocol.status, protocol.chunks) == (200, [b"one,", b"two,", b"three"])
    assert ("content-type", "text/plain; charset=utf-8") in protocol.headers


def test_one_piece_answer_keeps_status_and_headers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    protocol = FakeProtocol()
    _serve(app, FakeScope(method="GET", path="/"), protocol)
    assert not protocol.streamed
    assert protocol.status == 503
    assert protocol.headers == [("content-type", "application/json"), ("retry-after", "1")]
    assert protocol.body_bytes == b"{}"


def test_an_app_that_fails_before_answering_is_a_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raise RuntimeError("boom")

    protocol = FakeProtocol()
    with pytest.raises(RuntimeError, match="boom"):  # Granian logs it
        _serve(app, FakeScope(method="GET", path="/"), protocol)
    assert protocol.status == 500


def test_the_lifespan_runs_from_rsgi_init_and_del_and_shutdown_waits_for_the_flush() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("startup")
        try:
            yield
        finally:
            await asyncio.sleep(0.01)  # the producer's final flush takes time
            events.append("flushed")

    app = FastAPI(lifespan=lifespan)

    @app.get("/x")
    async def x() -> dict[str, list[str]]:
        return {"events": list(events)}

    front = RsgiFront(app, None)
    loop = asyncio.new_event_loop()
    try:
        front.__rsgi_init__(loop)
        assert events == ["startup"]
        protocol = FakeProtocol()
        scope = FakeScope(method="GET", path="/x", headers=FakeHeaders([(b"host", b"h")]))
        loop.run_until_complete(front.__rsgi__(scope, protocol))
        assert protocol.body_bytes == b'{"events":["startup"]}'
        front.__rsgi_del__(loop)
        assert events == ["startup", "flushed"]
    finally:
        loop.close()


def test_a_failed_startup_stops_the_worker() -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("no Kafka settings")
        yield  # pragma: no cover

    bridge = AsgiBridge(FastAPI(lifespan=lifespan))
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(SystemExit) as exited:
            bridge.startup(loop)
        assert exited.value.code == 1
    finally:
        loop.close()
