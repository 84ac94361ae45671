"""Counts and consumed offsets in one SQL transaction: the aggregator's exactly-once core.

Delivery semantics: a batch's counts, its event ids (for de-duplication) and the
next offset of every partition it read are committed atomically. After a crash
the consumer resumes from the offsets in the database, so a message is counted
once whether or not the crash hit before, during or after the commit.

Fencing: a batch is refused (``StaleBatchError``) when the stored offset of one of
its partitions is already past the batch's first offset, i.e. another consumer
(after a rebalance) committed those messages first.

De-duplication: an ``eventId`` is remembered with the time its first copy was
*received* (the Kafka record's timestamp, stamped by the API's producer, never the
client's event time). A copy received less than ``dedupe_window_ms`` (24 hours) after
the first is never counted again. Ids are forgotten only when the newest record seen is
more than the window past them, and that "newest" is capped by the aggregator's own clock,
so neither a client's clock nor a producer's can make the store forget early. Seed-format
events without an id are exactly-once per Kafka message, not per client retry.

Concurrency: statements take their locks in one order (offset rows, then event ids,
then count rows, each sorted), so two writers never deadlock each other; an id claimed
by two batches at once is counted by the one that commits (``ON CONFLICT DO NOTHING``).
A batch that cannot take its locks in time fails with ``RetryableStoreError`` and
changes nothing.

SQLite and PostgreSQL share this code; a dialect supplies what differs.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from adstream.aggregate.model import (
    AdTotal,
    Batch,
    CommitResult,
    MinuteCount,
    RetryableStoreError,
    StaleBatchError,
    Tally,
)
from adstream.events.clock import Clock, epoch_ms

DEFAULT_DEDUPE_WINDOW_MS = 24 * 3600 * 1000
PRUNE_EVERY_S = 60.0

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ad_counts (
        ad_id TEXT NOT NULL,
        minute BIGINT NOT NULL,
        impressions BIGINT NOT NULL DEFAULT 0,
        clicks BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (ad_id, minute))""",
    "CREATE INDEX IF NOT EXISTS ad_counts_by_minute ON ad_counts (minute)",
    """CREATE TABLE IF NOT EXISTS consumed_offsets (
        topic TEXT NOT NULL,
        kafka_partition INTEGER NOT NULL,
        next_offset BIGINT NOT NULL,
        PRIMARY KEY (topic, kafka_partition))""",
    """CREATE TABLE IF NOT EXISTS seen_event_ids (
        event_id TEXT PRIMARY KEY,
        received_ms BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS seen_event_ids_by_received ON seen_event_ids (received_ms)",
)
SCHEMA_OBJECTS = (
    "ad_counts",
    "ad_counts_by_minute",
    "consumed_offsets",
    "seen_event_ids",
    "seen_event_ids_by_received",
)
SCHEMA_ATTEMPTS = 5
_LEGACY_SEEN_EVENTS = "seen_events"
"""Before 0.2 ids were kept by event minute; migrated with that minute as their time."""

_UPSERT_COUNTS = """INSERT INTO ad_counts (ad_id, minute, impressions, clicks)
    VALUES (%s, %s, %s, %s) ON CONFLICT (ad_id, minute) DO UPDATE SET
        impressions = ad_counts.impressions + excluded.impressions,
        clicks = ad_counts.clicks + excluded.clicks"""
_LOCK_OFFSET_ROW = """INSERT INTO consumed_offsets (topic, kafka_partition, next_offset)
    VALUES (%s, %s, -1) ON CONFLICT (topic, kafka_partition) DO NOTHING"""
_SET_OFFSET = (
    "UPDATE consumed_offsets SET next_offset = %s WHERE topic = %s AND kafka_partition = %s"
)


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class SqlCountStore(ABC):
    """The shared SQL; subclasses open the connection and run transactions."""

    def __init__(
        self, dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS, clock: Clock = epoch_ms
    ) -> None:
        self.dedupe_window_ms = dedupe_window_ms
        self._clock = clock
        self.prune_every_s = PRUNE_EVERY_S
        self._last_prune = 0.0

    # ---- dialect -------------------------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor inside a write transaction, committed on success, rolled back on error."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Cursor]:
        """A cursor for queries."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _claim_event_ids(self, cur: Cursor, rows: list[tuple[str, int]]) -> set[str]:
        """Insert (event id, received ms) rows not stored yet; return the ids inserted."""

    @abstractmethod
    def _exists(self, cur: Cursor, name: str) -> bool:
        """Whether a table or index of that name exists."""

    @abstractmethod
    def _lock_offsets_sql(self) -> str:
        """SELECT next_offset of one partition, locking the row where the database can."""

    # ---- schema and offsets --------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create what is missing; a schema already in place is only looked at.

        DDL takes table locks (in PostgreSQL even ``CREATE INDEX IF NOT EXISTS`` takes a
        SHARE lock) that can deadlock with a running aggregator's batch, so a second
        instance, the stats API or a tool opening the store must not issue any.
        """
        with self.reading() as cur:
            if all(self._exists(cur, name) for name in SCHEMA_OBJECTS) and not self._exists(
                cur, _LEGACY_SEEN_EVENTS
            ):
                return
        for attempt in range(1, SCHEMA_ATTEMPTS + 1):
            try:
                self._create_schema()
                return
            except RetryableStoreError:  # two instances creating it at once
                if attempt == SCHEMA_ATTEMPTS:
                    raise
                time.sleep(0.2 * attempt)

    def _create_schema(self) -> None:
        with self.transaction() as cur:
            for statement in SCHEMA:
                cur.execute(statement)
            if self._exists(cur, _LEGACY_SEEN_EVENTS):
                cur.execute(
                    "INSERT INTO seen_event_ids (event_id, received_ms) "  # noqa: S608
                    f"SELECT event_id, minute FROM {_LEGACY_SEEN_EVENTS} WHERE true "
                    "ON CONFLICT (event_id) DO NOTHING"
                )
                cur.execute(f"DROP TABLE {_LEGACY_SEEN_EVENTS}")

    def load_offsets(self, topic: str) -> dict[int, int]:
        """Next offset to read per partition, as last committed with the counts."""
        with self.reading() as cur:
            cur.execute(
                "SELECT kafka_partition, next_offset FROM consumed_offsets "
                "WHERE topic = %s AND next_offset >= 0",
                (topic,),
            )
            return {int(p): int(o) for p, o in cur.fetchall()}

    # ---- the transaction -----------------------------------------------------------------
    def commit(self, batch: Batch) -> CommitResult:
        """Apply a batch atomically; raise ``StaleBatchError`` if it was already applied."""
        with self.transaction() as cur:
            self._check_and_advance_offsets(cur, batch)
            fresh, duplicates = self._drop_duplicates(cur, batch.tallies)
            self._add_counts(cur, fresh)
            self._maybe_prune(cur, batch.tallies)
        return CommitResult(counted=len(fresh), duplicates=duplicates)

    def _check_and_advance_offsets(self, cur: Cursor, batch: Batch) -> None:
        for r in sorted(batch.ranges.values(), key=lambda r: (r.topic, r.partition)):
            cur.execute(_LOCK_OFFSET_ROW, (r.topic, r.partition))
            cur.execute(self._lock_offsets_sql(), (r.topic, r.partition))
            stored = int(cur.fetchone()[0])
            if stored > r.first:
                raise StaleBatchError(
                    f"{r.topic}[{r.partition}] is committed up to offset {stored}; this batch "
                    f"starts at {r.first}: another consumer already counted it"
                )
            cur.execute(_SET_OFFSET, (r.next, r.topic, r.partition))

    def _drop_duplicates(self, cur: Cursor, tallies: list[Tally]) -> tuple[list[Tally], int]:
        """The tallies to count: no id twice in the batch, no id the store already has."""
        first_copies: dict[str, Tally] = {}
        for tally in tallies:
            if tally.event_id is not None:
                first_copies.setdefault(tally.event_id, tally)
        rows = sorted((i, t.received_ms) for i, t in first_copies.items())
        claimed = self._claim_event_ids(cur, rows) if rows else set()
        fresh = [
            t
            for t in tallies
            if t.event_id is None or (t.event_id in claimed and first_copies[t.event_id] is t)
        ]
        return fresh, len(tallies) - len(fresh)

    def _add_counts(self, cur: Cursor, tallies: list[Tally]) -> None:
        buckets: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
        for t in tallies:
            bucket = buckets[(t.ad_id, t.minute)]
            bucket[0] += t.impressions
            bucket[1] += t.clicks
        # Sorted keys: concurrent writers lock rows in the same order (no deadlocks).
        rows = [(ad, minute, i, c) for (ad, minute), (i, c) in sorted(buckets.items())]
        if rows:
            self._upsert_counts(cur, rows)

    def _upsert_counts(self, cur: Cursor, rows: list[tuple[str, int, int, int]]) -> None:
        """Add (ad, minute, impressions, clicks) rows, in the given order."""
        cur.executemany(_UPSERT_COUNTS, rows)

    def _maybe_prune(self, cur: Cursor, tallies: list[Tally]) -> None:
        """Forget ids received more than the window before the newest record (clock-capped)."""
        now = time.monotonic()
        if now - self._last_prune < self.prune_every_s or not tallies:
            return
        self._last_prune = now
        newest = min(max(t.received_ms for t in tallies), self._clock())
        horizon = newest - self.dedupe_window_ms
        cur.execute("DELETE FROM seen_event_ids WHERE received_ms < %s", (horizon,))

    # ---- queries -------------------------------------------------------------------------
    def stats(self, ad_id: str, start_ms: int, end_ms: int) -> list[MinuteCount]:
        """Minute buckets of one ad with ``start_ms <= minute < end_ms``, oldest first."""
        with self.reading() as cur:
            cur.execute(
                "SELECT minute, impressions, clicks FROM ad_counts "
                "WHERE ad_id = %s AND minute >= %s AND minute < %s ORDER BY minute",
                (ad_id, start_ms, end_ms),
            )
            return [MinuteCount(int(m), int(i), int(c)) for m, i, c in cur.fetchall()]

    def top(self, since_ms: int, limit: int) -> list[AdTotal]:
        """Ads with the most impressions in minutes from ``since_ms`` on."""
        with self.reading() as cur:
            cur.execute(
                "SELECT ad_id, SUM(impressions) AS imps, SUM(clicks) AS clks FROM ad_counts "
                "WHERE minute >= %s GROUP BY ad_id ORDER BY imps DESC, ad_id LIMIT %s",
                (since_ms, limit),
            )
            return [AdTotal(str(a), int(i), int(c)) for a, i, c in cur.fetchall()]

    def top_and_window_totals(
        self, since_ms: int, limit: int
    ) -> tuple[list[AdTotal], tuple[int, int, int]]:
        """The top ads from ``since_ms`` on and the sums over ALL ads of that window.

        One statement (window functions run before LIMIT), so the sums and the rows come
        from the same snapshot: a page showing both never has them disagree.
        """
        with self.reading() as cur:
            cur.execute(
                "SELECT ad_id, imps, clks, SUM(imps) OVER (), SUM(clks) OVER (), COUNT(*) OVER () "
                "FROM (SELECT ad_id, SUM(impressions) AS imps, SUM(clicks) AS clks "
                "FROM ad_counts WHERE minute >= %s GROUP BY ad_id) AS per_ad "
                "ORDER BY imps DESC, ad_id LIMIT %s",
                (since_ms, limit),
            )
            rows = cur.fetchall()
        if not rows:
            return [], (0, 0, 0)
        top = [AdTotal(str(r[0]), int(r[1]), int(r[2])) for r in rows]
        return top, (int(rows[0][3]), int(rows[0][4]), int(rows[0][5]))

    def grand_totals(self) -> tuple[int, int, int]:
        """All impressions, all clicks and the number of ads counted so far."""
        with self.reading() as cur:
            cur.execute(
                "SELECT COALESCE(SUM(impressions), 0), COALESCE(SUM(clicks), 0), "
                "COUNT(DISTINCT ad_id) FROM ad_counts"
            )
            imps, clicks, ads = cur.fetchone()
        return int(imps), int(clicks), int(ads)

    def totals(self) -> Iterator[tuple[str, int, int, int]]:
        """Every bucket (ad, minute, impressions, clicks): for tests and exports."""
        with self.reading() as cur:
            cur.execute(
                "SELECT ad_id, minute, impressions, clicks FROM ad_counts ORDER BY ad_id, minute"
            )
            rows = cur.fetchall()
        for ad, minute, imps, clicks in rows:
            yield str(ad), int(minute), int(imps), int(clicks)
