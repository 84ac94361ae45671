"""The count store in a SQLite file: embedded, zero set-up, the local default.

WAL mode lets the HTTP API read while the aggregator writes; ``synchronous=FULL``
makes every committed batch survive a crash of the process or of the machine.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adstream.aggregate.store import DEFAULT_DEDUPE_WINDOW_MS, Cursor, SqlCountStore
from adstream.events.clock import Clock, epoch_ms

_MAX_VARIABLES = 500
_INSERT_ID = "INSERT INTO seen_event_ids (event_id, received_ms) VALUES (%s, %s)"


class _QmarkCursor:
    """Runs the shared ``%s``-style SQL on sqlite3, which wants ``?``."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql.replace("%s", "?"), params)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(sql.replace("%s", "?"), params)

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def fetchone(self) -> Any:
        return self._cursor.fetchone()


class SqliteCountStore(SqlCountStore):
    def __init__(
        self,
        path: Path | str,
        dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS,
        clock: Clock = epoch_ms,
    ) -> None:
        super().__init__(dedupe_window_ms, clock)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self._lock:
            cursor = self._conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
            try:
                yield _QmarkCursor(cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        with self._lock:
            yield _QmarkCursor(self._conn.cursor())

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _lock_offsets_sql(self) -> str:
        # BEGIN IMMEDIATE already serializes writers.
        return "SELECT next_offset FROM consumed_offsets WHERE topic = %s AND kafka_partition = %s"

    def _exists(self, cur: Cursor, name: str) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE name = %s", (name,))
        return cur.fetchone() is not None

    def _claim_event_ids(self, cur: Cursor, rows: list[tuple[str, int]]) -> set[str]:
        # BEGIN IMMEDIATE serializes writers. Ids are almost always new: insert them all in
        # one go, and only when one is already stored look first and insert the rest.
        cur.execute("SAVEPOINT claim")
        try:
            cur.executemany(_INSERT_ID, rows)
        except sqlite3.IntegrityError:
            cur.execute("ROLLBACK TO claim")
        else:
            cur.execute("RELEASE claim")
            return {event_id for event_id, _ in rows}
        cur.execute("RELEASE claim")
        found: set[str] = set()
        for start in range(0, len(rows), _MAX_VARIABLES):
            chunk = [event_id for event_id, _ in rows[start : start + _MAX_VARIABLES]]
            marks = ",".join(["%s"] * len(chunk))
            cur.execute(f"SELECT event_id FROM seen_event_ids WHERE event_id IN ({marks})", chunk)  # noqa: S608
            found.update(row[0] for row in cur.fetchall())
        new = [row for row in rows if row[0] not in found]
        cur.executemany(_INSERT_ID, new)
        return {event_id for event_id, _ in new}
