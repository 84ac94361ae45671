"""The count store's transaction on real SQLite and PostgreSQL: counts, offsets, dedupe, fencing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from adstream.aggregate.model import MINUTE_MS, Batch, StaleBatchError, Tally
from adstream.aggregate.postgres_store import PostgresCountStore
from adstream.aggregate.sqlite_store import SqliteCountStore
from adstream.aggregate.store import SqlCountStore
from adstream.aggregate.store_url import StoreUrlError, open_store
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration

T0 = 1_790_000_040_000  # a minute boundary
TOPIC = "ad-events"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlCountStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'counts.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    opened = open_store(url)
    yield opened
    opened.close()


def _batch(partition: int, first: int, *tallies: Tally) -> Batch:
    batch = Batch(tallies=list(tallies))
    for offset in range(first, first + len(tallies)):
        batch.consumed(TOPIC, partition, offset)
    return batch


def test_counts_and_offsets_commit_together(store: SqlCountStore) -> None:
    result = store.commit(
        _batch(
            0,
            0,
            Tally("AD1", T0, 1, 0, "e1"),
            Tally("AD1", T0, 3, 0, "e2"),
            Tally("AD1", T0 + MINUTE_MS, 0, 1, "e3"),
            Tally("AD2", T0, 5, 0, None),
        )
    )
    assert (result.counted, result.duplicates) == (4, 0)
    assert list(store.totals()) == [
        ("AD1", T0, 4, 0),
        ("AD1", T0 + MINUTE_MS, 0, 1),
        ("AD2", T0, 5, 0),
    ]
    assert store.load_offsets(TOPIC) == {0: 4}


def test_events_with_a_known_id_are_not_counted_twice(store: SqlCountStore) -> None:
    store.commit(_batch(0, 0, Tally("AD1", T0, 1, 0, "e1")))
    result = store.commit(
        _batch(
            0,
            1,
            Tally("AD1", T0, 1, 0, "e1"),
            Tally("AD1", T0, 1, 0, "e2"),
            Tally("AD1", T0, 1, 0, "e2"),
        )
    )
    assert (result.counted, result.duplicates) == (1, 2)
    assert list(store.totals()) == [("AD1", T0, 2, 0)]
    assert store.load_offsets(TOPIC) == {0: 4}  # duplicates are consumed all the same


def test_events_without_id_count_per_message(store: SqlCountStore) -> None:
    store.commit(_batch(1, 0, Tally("AD9", T0, 1, 0), Tally("AD9", T0, 1, 0)))
    assert list(store.totals()) == [("AD9", T0, 2, 0)]


def test_a_batch_already_committed_is_refused_and_changes_nothing(store: SqlCountStore) -> None:
    store.commit(_batch(2, 0, Tally("AD1", T0, 1, 0), Tally("AD1", T0, 1, 0)))
    with pytest.raises(StaleBatchError, match=r"ad-events\[2\] is committed up to offset 2"):
        store.commit(_batch(2, 1, Tally("AD1", T0, 7, 0)))
    assert list(store.totals()) == [("AD1", T0, 2, 0)]
    assert store.load_offsets(TOPIC) == {2: 2}


def test_a_failing_batch_rolls_back_its_offsets(store: SqlCountStore) -> None:
    bad = Tally("AD2", T0, 2**63, 0, "e-bad")  # too large for BIGINT: fails inside the database
    with pytest.raises(Exception, match=r"(?i)too large|out of range"):
        store.commit(_batch(3, 0, Tally("AD1", T0, 1, 0, "e-ok"), bad))
    assert store.load_offsets(TOPIC) == {}
    assert list(store.totals()) == []
    store.commit(_batch(3, 0, Tally("AD1", T0, 1, 0, "e-ok")))  # the id was not kept either
    assert list(store.totals()) == [("AD1", T0, 1, 0)]


def test_stats_and_top(store: SqlCountStore) -> None:
    store.commit(
        _batch(
            0,
            0,
            Tally("A", T0, 10, 1),
            Tally("A", T0 + MINUTE_MS, 5, 0),
            Tally("B", T0 + MINUTE_MS, 20, 2),
            Tally("C", T0 - 10 * MINUTE_MS, 99, 0),
        )
    )
    assert [
        (m.minute, m.impressions, m.clicks) for m in store.stats("A", T0, T0 + 2 * MINUTE_MS)
    ] == [
        (T0, 10, 1),
        (T0 + MINUTE_MS, 5, 0),
    ]
    assert store.stats("A", T0 + MINUTE_MS, T0 + 2 * MINUTE_MS)[0].impressions == 5
    top = store.top(since_ms=T0, limit=2)
    assert [(t.ad_id, t.impressions, t.clicks) for t in top] == [("B", 20, 2), ("A", 15, 1)]
    # The window's sums cover every ad of it (A, B and D), not only the two listed.
    store.commit(_batch(1, 0, Tally("D", T0, 3, 0)))
    listed, window = store.top_and_window_totals(since_ms=T0, limit=2)
    assert [t.ad_id for t in listed] == ["B", "A"]
    assert window == (38, 3, 3)
    assert store.top_and_window_totals(since_ms=T0 + 60 * MINUTE_MS, limit=2) == ([], (0, 0, 0))


def _received(ms: int, *tallies: Tally) -> list[Tally]:
    return [t._replace(received_ms=ms) for t in tallies]


def test_dedupe_window_is_measured_in_receive_time(store: SqlCountStore) -> None:
    store.dedupe_window_ms = 2 * MINUTE_MS
    store.prune_every_s = 0
    store.commit(_batch(0, 0, *_received(T0, Tally("A", T0, 1, 0, "old"))))
    # A late event (old event time) received now is remembered like any other.
    store.commit(
        _batch(0, 1, *_received(T0 + MINUTE_MS, Tally("A", T0 - 60 * MINUTE_MS, 1, 0, "late")))
    )
    store.commit(
        _batch(0, 2, *_received(T0 + MINUTE_MS, Tally("A", T0 - 60 * MINUTE_MS, 1, 0, "late")))
    )
    # Received more than the window after "old": the documented limit of de-duplication.
    store.commit(_batch(0, 3, *_received(T0 + 5 * MINUTE_MS, Tally("A", T0, 1, 0, "new"))))
    store.commit(_batch(0, 4, *_received(T0 + 5 * MINUTE_MS, Tally("A", T0, 1, 0, "old"))))
    assert {(a, m): i for a, m, i, _ in store.totals()}[("A", T0)] == 3
    assert {(a, m): i for a, m, i, _ in store.totals()}[("A", T0 - 60 * MINUTE_MS)] == 1


def test_a_record_time_ahead_of_the_clock_cannot_prune(tmp_path: Path) -> None:
    now = T0 + 10 * MINUTE_MS
    store = SqliteCountStore(tmp_path / "counts.db", 2 * MINUTE_MS, clock=lambda: now)
    store.ensure_schema()
    store.prune_every_s = 0
    store.commit(_batch(0, 0, *_received(now, Tally("A", T0, 1, 0, "id-1"))))
    year_ahead = now + 365 * 24 * 60 * MINUTE_MS
    store.commit(_batch(0, 1, *_received(year_ahead, Tally("B", T0, 1, 0, "id-2"))))
    store.commit(_batch(0, 2, *_received(now, Tally("A", T0, 1, 0, "id-1"))))
    assert [(a, i) for a, _, i, _ in store.totals()] == [("A", 1), ("B", 1)]
    store.close()


def test_ids_kept_by_an_older_version_are_migrated(tmp_path: Path) -> None:
    path = tmp_path / "counts.db"
    with sqlite3.connect(path) as legacy:
        legacy.execute("CREATE TABLE seen_events (event_id TEXT PRIMARY KEY, minute BIGINT)")
        legacy.execute("INSERT INTO seen_events VALUES ('kept', ?)", (T0,))
    store = open_store(f"sqlite:///{path}")
    result = store.commit(_batch(0, 0, *_received(T0, Tally("A", T0, 1, 0, "kept"))))
    assert (result.counted, result.duplicates) == (0, 1)
    store.close()


def test_unknown_database_url_is_explained() -> None:
    with pytest.raises(StoreUrlError, match="use sqlite:///PATH or postgresql://"):
        open_store("mysql://localhost/x")


def test_postgres_url_round_trip(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    first = open_store(url)
    first.commit(_batch(0, 0, Tally("A", T0, 1, 0, "x")))
    first.close()
    again = open_store(url)  # schema creation is idempotent; data is kept
    assert again.load_offsets(TOPIC) == {0: 1}
    again.close()


def test_opening_a_store_beside_a_running_batch_takes_no_lock(postgres: PostgresServer) -> None:
    """A second instance or the stats API opening the store while a batch is open.

    Before, ``CREATE INDEX IF NOT EXISTS`` ran on every open and waited for (or deadlocked
    with) the batch's row locks.
    """
    url = postgres.new_database()
    open_store(url).close()
    with psycopg.connect(url) as running_batch:
        running_batch.execute(
            "INSERT INTO seen_event_ids (event_id, received_ms) VALUES ('in-flight', 1)"
        )
        beside = PostgresCountStore(url, lock_timeout_ms=500)
        beside.ensure_schema()  # raised RetryableStoreError (lock timeout) before
        assert beside.load_offsets(TOPIC) == {}
        beside.close()
