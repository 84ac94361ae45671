"""The count store in PostgreSQL, for production and for several aggregator instances.

Each partition's offset row is locked (``SELECT … FOR UPDATE``) inside the batch's
transaction, so two consumers that briefly both own a partition during a
rebalance cannot both commit the same messages. Event ids are claimed with
``INSERT … ON CONFLICT DO NOTHING RETURNING``: under READ COMMITTED the second of two
concurrent claims waits for the first and then inserts nothing, so an id that arrives on
two partitions is counted once and never raises a unique violation. ``lock_timeout``
bounds every wait; a lock timeout or a deadlock becomes ``RetryableStoreError``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors

from adstream.aggregate.model import RetryableStoreError
from adstream.aggregate.store import DEFAULT_DEDUPE_WINDOW_MS, Cursor, SqlCountStore
from adstream.events.clock import Clock, epoch_ms

LOCK_TIMEOUT_MS = 10_000
_RETRYABLE = (errors.LockNotAvailable, errors.DeadlockDetected, errors.SerializationFailure)


class PostgresCountStore(SqlCountStore):
    def __init__(
        self,
        url: str,
        dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS,
        clock: Clock = epoch_ms,
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
    ) -> None:
        super().__init__(dedupe_window_ms, clock)
        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self._lock:
            try:
                with self._conn.transaction(), self._conn.cursor() as cursor:
                    yield cursor
            except _RETRYABLE as exc:
                raise RetryableStoreError(f"the batch was rolled back: {exc}") from exc

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        with self._lock, self._conn.cursor() as cursor:
            yield cursor

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _lock_offsets_sql(self) -> str:
        return (
            "SELECT next_offset FROM consumed_offsets "
            "WHERE topic = %s AND kafka_partition = %s FOR UPDATE"
        )

    def _exists(self, cur: Cursor, name: str) -> bool:
        cur.execute("SELECT to_regclass(%s)", (name,))
        return cur.fetchone()[0] is not None

    def _upsert_counts(self, cur: Cursor, rows: list[tuple[str, int, int, int]]) -> None:
        # One statement for the whole batch (arrays), not one round trip per row.
        ads, minutes, impressions, clicks = (list(column) for column in zip(*rows, strict=True))
        cur.execute(
            "INSERT INTO ad_counts (ad_id, minute, impressions, clicks) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[]) "
            "ORDER BY 1, 2 ON CONFLICT (ad_id, minute) DO UPDATE SET "
            "impressions = ad_counts.impressions + excluded.impressions, "
            "clicks = ad_counts.clicks + excluded.clicks",
            (ads, minutes, impressions, clicks),
        )

    def _claim_event_ids(self, cur: Cursor, rows: list[tuple[str, int]]) -> set[str]:
        cur.execute(
            "INSERT INTO seen_event_ids (event_id, received_ms) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[]) AS r(event_id, received_ms) "
            "ORDER BY event_id ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            ([event_id for event_id, _ in rows], [received for _, received in rows]),
        )
        return {row[0] for row in cur.fetchall()}
