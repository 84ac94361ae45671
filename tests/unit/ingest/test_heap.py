"""The collector settings a serving worker gets once the publisher starts (`ingest.heap`)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from adstream.ingest import heap
from adstream.ingest.publisher import AdEventPublisher
from adstream.kafka.factory import make_producer
from adstream.kafka.settings import KafkaSettings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_starting_the_publisher_freezes_the_startup_heap_and_raises_the_thresholds() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    producer = make_producer(KafkaSettings(bootstrap_servers=("127.0.0.1:1",)))
    publisher = AdEventPublisher(producer, "ad-events")

    async def start_and_close() -> None:
        publisher.start()
        await publisher.close(0)

    asyncio.run(start_and_close())
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *heap.OLDER_THRESHOLDS)
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restored_gc")
def test_cycles_made_after_startup_are_still_collected() -> None:
    heap.settle_after_startup()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    del a, b
    gc.collect()
    assert ref() is None
