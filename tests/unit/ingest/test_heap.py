"""The collector settings a serving worker gets once its app is built (`ingest.heap`)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from adstream import api
from adstream.ingest import heap
from adstream.kafka.settings import KafkaSettings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_the_worker_factory_freezes_the_startup_heap_and_raises_the_thresholds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    monkeypatch.setattr(api, "configure_logging", lambda: None)  # keep pytest's handlers
    monkeypatch.delenv("ADSTREAM_KAFKA_CONFIG", raising=False)
    monkeypatch.setenv("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    api.create_api_from_env()
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *heap.OLDER_THRESHOLDS)
    assert gc.get_freeze_count() > 0


def test_building_an_app_in_a_test_process_leaves_the_collector_alone() -> None:
    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()
    api.create_api(KafkaSettings(bootstrap_servers=("127.0.0.1:1",)))
    assert (gc.get_threshold(), gc.get_freeze_count()) == (thresholds, frozen)


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
