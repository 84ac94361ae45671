"""The Kafka floor: the least a Python server can do to answer a POST after its ack.

Served by `bench.run` as ``granian --interface rsgi bench.probe:app`` with the same
Granian settings as `adstream serve` and, per worker, one producer with the API's
producer settings (`make_producer` + `ApiSettings().producer_overrides()`, from the
client properties in ``ADSTREAM_PROBE_PROPERTIES``). Each POST produces a small record
keyed by the path's ad id and is answered 200 when its ack is back; one poll thread hands
the acks of each poll to the event loop in one call, as the issue's probe did. No
validation, event ids, headers, metrics, auth or error answers: the single-event rows
are compared with this to show what adstream's own code costs beside the unavoidable
(HTTP server, librdkafka, broker round trip), measured in the same run.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message

from adstream.ingest.config import ApiSettings
from adstream.kafka.factory import make_producer
from adstream.kafka.java_properties import from_java_properties

PROPERTIES_ENV = "ADSTREAM_PROBE_PROPERTIES"
HEADERS = [("content-type", "text/plain; charset=utf-8")]
VALUE = b'{"impressions":1}'


class Probe:
    """RSGI app: Granian calls `__rsgi_init__` in each worker, after the fork."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._producer: Any = None
        self._acks: list[tuple[asyncio.Future[bool], bool]] = []

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        settings = from_java_properties(Path(os.environ[PROPERTIES_ENV]))
        self._producer = make_producer(settings, ApiSettings().producer_overrides())
        self._loop = loop
        threading.Thread(target=self._poll, daemon=True).start()

    def _poll(self) -> None:
        assert self._loop is not None
        while True:
            self._producer.poll(0.05)
            if self._acks:
                acks, self._acks = self._acks, []
                self._loop.call_soon_threadsafe(_settle, acks)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        await proto()
        assert self._loop is not None
        ad_id = scope.path.split("/")[2]
        future: asyncio.Future[bool] = self._loop.create_future()

        def acked(error: KafkaError | None, _message: Message) -> None:
            self._acks.append((future, error is None))

        self._producer.produce("ad-events", VALUE, ad_id.encode(), on_delivery=acked)
        if await future:
            proto.response_bytes(200, HEADERS, b"ok")
        else:
            proto.response_bytes(503, HEADERS, b"not acknowledged")


def _settle(acks: list[tuple[asyncio.Future[bool], bool]]) -> None:
    for future, ok in acks:
        future.set_result(ok)


app = Probe()
