"""The count store in PostgreSQL, for production and for several aggregator instances.

Each partition's offset row is locked (``SELECT … FOR UPDATE``) inside the batch's
transaction, so two consumers that briefly both own a partition during a
rebalance cannot both commit the same messages.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from adstream.aggregate.store import DEFAULT_DEDUPE_WINDOW_MS, Cursor, SqlCountStore


class PostgresCountStore(SqlCountStore):
    def __init__(self, url: str, dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS) -> None:
        super().__init__(dedupe_window_ms)
        self._conn = psycopg.connect(url, autocommit=True)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cursor:
            yield cursor

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

    def _existing_event_ids(self, cur: Cursor, ids: list[str]) -> set[str]:
        cur.execute("SELECT event_id FROM seen_events WHERE event_id = ANY(%s)", (ids,))
        return {row[0] for row in cur.fetchall()}
