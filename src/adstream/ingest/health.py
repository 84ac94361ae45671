"""Readiness: the broker answers a metadata request and the topic exists.

The answer is cached briefly so a busy load balancer's probes do not each cost a
metadata round trip.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from confluent_kafka import KafkaException, Producer

CACHE_S = 1.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    detail: str


class ReadinessProbe:
    def __init__(self, producer: Producer, topic: str, timeout: float = 2.0) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout = timeout
        self._cached: tuple[float, Readiness] | None = None

    def _check(self) -> Readiness:
        try:
            metadata = self._producer.list_topics(self._topic, timeout=self._timeout)
        except KafkaException as exc:
            return Readiness(False, f"broker unreachable: {exc.args[0].str()}")
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            return Readiness(False, f"topic {self._topic} not found")
        return Readiness(True, f"topic {self._topic} has {len(topic.partitions)} partitions")

    async def check(self) -> Readiness:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < CACHE_S:
            return self._cached[1]
        result = await asyncio.to_thread(self._check)
        self._cached = (time.monotonic(), result)
        return result
