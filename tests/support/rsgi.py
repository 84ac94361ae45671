"""Drive an RSGI application in-process, as Granian does, for tests.

`FakeHeaders` behaves as Granian's `RSGIHeaders` (lower-case names; a value that is not
visible ASCII is left out of `get`, `get_all` and `items`); `FakeProtocol` records the
response; `RsgiTransport` is an httpx transport that runs the app's `__rsgi_init__`,
serves each request on an event loop in a thread, and runs `__rsgi_del__` on close.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx


def _visible(value: bytes) -> bool:
    return all(32 <= b < 127 or b == 9 for b in value)


class FakeHeaders:
    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = [(k.decode("ascii").lower(), v) for k, v in raw]

    def __contains__(self, key: str) -> bool:
        return any(k == key for k, _ in self._raw)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self._raw))

    def keys(self) -> list[str]:
        return list(self)

    def get_all(self, key: str) -> list[str]:
        return [v.decode("ascii") for k, v in self._raw if k == key and _visible(v)]

    def get(self, key: str, default: Any = None) -> Any:
        first = next((v for k, v in self._raw if k == key), None)
        return first.decode("ascii") if first is not None and _visible(first) else default

    def items(self) -> list[tuple[str, str]]:
        return [(k, v.decode("ascii")) for k, v in self._raw if _visible(v)]


@dataclass
class FakeScope:
    method: str
    path: str  # percent-decoded, as Granian gives it
    query_string: str = ""
    headers: FakeHeaders = field(default_factory=lambda: FakeHeaders([]))
    http_version: str = "1.1"
    server: str = "127.0.0.1:8080"
    client: str = "127.0.0.1:50000"
    scheme: str = "http"
    authority: str | None = None
    proto: str = "http"
    rsgi_version: str = "1.6"


class FakeStream:
    def __init__(self, protocol: FakeProtocol) -> None:
        self.protocol = protocol

    async def send_bytes(self, data: bytes) -> None:
        self.protocol.chunks.append(data)


class FakeProtocol:
    """Records what the app answered; hands out the body in the given chunks."""

    def __init__(self, body: list[bytes] | None = None) -> None:
        self.body = body or []
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.streamed = False
        self.disconnected = asyncio.Event()

    async def __call__(self) -> bytes:
        return b"".join(self.body)

    def __aiter__(self) -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            for chunk in self.body:
                yield chunk

        return chunks()

    async def client_disconnect(self) -> None:
        await self.disconnected.wait()

    def _start(self, status: int, headers: list[tuple[str, str]]) -> None:
        assert self.status is None, "answered twice"
        self.status, self.headers = status, headers

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        self._start(status, headers)

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self._start(status, headers)
        self.chunks.append(body)

    def response_str(self, status: int, headers: list[tuple[str, str]], body: str) -> None:
        self.response_bytes(status, headers, body.encode())

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> FakeStream:
        self._start(status, headers)
        self.streamed = True
        return FakeStream(self)

    @property
    def body_bytes(self) -> bytes:
        return b"".join(self.chunks)


def scope_of(request: httpx.Request) -> FakeScope:
    """The RSGI scope Granian would give for an httpx request."""
    raw = [(k.lower(), v) for k, v in request.headers.raw]
    return FakeScope(
        method=request.method,
        path=unquote(request.url.raw_path.split(b"?", 1)[0].decode("ascii"), errors="replace"),
        query_string=request.url.query.decode("ascii"),
        headers=FakeHeaders(raw),
        server=f"{request.url.host}:{request.url.port or 80}",
    )


class RsgiTransport(httpx.BaseTransport):
    """Serve httpx requests with an RSGI app on a loop thread, like a Granian worker."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        app.__rsgi_init__(self.loop)  # before serving, the loop not running (as Granian)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        protocol = FakeProtocol([request.read()] if request.content else [])

        async def serve() -> None:
            await self.app.__rsgi__(scope_of(request), protocol)

        asyncio.run_coroutine_threadsafe(serve(), self.loop).result(60)
        assert protocol.status is not None, "no answer"
        headers = list(protocol.headers)
        if not protocol.streamed and not any(k == "content-length" for k, _ in headers):
            headers.append(("content-length", str(len(protocol.body_bytes))))  # as hyper does
        return httpx.Response(protocol.status, headers=headers, content=protocol.body_bytes)

    def close(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.app.__rsgi_del__(self.loop)  # after serving, as Granian does
            self.loop.close()
