"""The hello-world baseline: the same server (Granian, uvloop, same workers) with no Kafka.

Served by `bench.run` as ``granian --interface rsgi bench.hello:app`` (and ASGI:
``bench.hello:asgi``), answering every request with a short text, so the single-event rows
can be read as a share of what the server itself can do on this machine.
"""

from __future__ import annotations

from typing import Any

BODY = b"Impression recorded for AD1"
HEADERS = [("content-type", "text/plain; charset=utf-8")]


async def app(scope: Any, proto: Any) -> None:
    """RSGI: read the body (none), answer 200."""
    await proto()
    proto.response_bytes(200, HEADERS, BODY)


async def asgi(scope: Any, receive: Any, send: Any) -> None:
    """ASGI: the same answer."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
