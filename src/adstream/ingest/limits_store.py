"""Per-key token buckets and seen URL nonces, shared by the API's worker processes.

`LimitsStore` is what the `Gate` calls; the app (`ingest.app`) picks the backend from
``ADSTREAM_API_LIMITS_URL``: unset, this module's `SharedLimits` (one SQLite file per
server); ``redis://`` or ``rediss://``, `limits_redis.RedisLimits` (one budget across every
task and server that shares the Redis/Valkey, as on AWS). Both share the lease design below.

Where the SQLite state lives: one small SQLite database (WAL, ``synchronous=OFF``) in a
directory all workers of one server share (`adstream serve` makes a fresh one per run,
beside the metrics directory). SQLite's write lock serialises the workers, so two
workers never both spend the same tokens or both accept the same nonce. The state is
not durable on purpose: a restart refills every bucket and forgets nonces, and then the
aggregator's event-id de-duplication still drops a replayed signed URL (the id derives
from the nonce). On AWS, tasks share no disk, so this store would limit per task; the
stack gives the API tasks an ElastiCache Serverless cache instead (`limits_redis`).

Cost on the hot path: a worker *leases* tokens in chunks (at most `MAX_LEASE` or 5% of
the burst) and spends them in memory, so most requests never touch SQLite. The price is
precision: a key can exceed its bucket by at most one lease per worker. A small burst
(tests, strict quotas) leases nothing and is exact. Each signed URL costs one insert.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

MAX_LEASE = 50
PURGE_EVERY_S = 10.0
DB_NAME = "auth-state.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (key_id TEXT PRIMARY KEY, tokens REAL NOT NULL,
                                    at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (key_id TEXT NOT NULL, nonce TEXT NOT NULL,
                                   exp INTEGER NOT NULL, PRIMARY KEY (key_id, nonce))
                                   WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_exp ON nonces (exp);
"""


class LimitsStoreDownError(Exception):
    """The shared store did not answer in time: the request cannot be admitted (503)."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class LimitsStoreConfigError(Exception):
    """The shared store refuses this client (credentials, permissions): not a passing outage."""


class LimitsStore(Protocol):
    """Token buckets per key id and a replay set of (key id, nonce) until their expiry.

    Async because a networked store must not block the worker's event loop while it
    waits; the SQLite one answers without awaiting. `LimitsStoreDownError` when the
    store cannot answer.
    """

    async def take(self, key_id: str, cost: int, rate_per_s: float, burst: int) -> float:
        """Spend `cost` tokens: 0.0 if granted, else seconds to wait (spending nothing)."""
        ...

    async def first_use(self, key_id: str, nonce: str, exp: int) -> bool:
        """Record the nonce until `exp` (epoch s); False if it was already recorded."""
        ...

    async def forget(self, key_id: str, nonce: str) -> None:
        """Undo `first_use` for a request that was not counted (refused or not published)."""
        ...

    async def aclose(self) -> None: ...


def lease_size(burst: int) -> int:
    """Tokens a worker takes beyond its need: at most `MAX_LEASE`, 5% of the burst."""
    return min(MAX_LEASE, burst // 20)


class SharedLimits:
    """`LimitsStore` in a SQLite file shared by the workers of one server."""

    def __init__(self, directory: Path, clock: Callable[[], float] = time.time) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            directory / DB_NAME, isolation_level=None, timeout=5.0, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        self._clock = clock
        self._leases: dict[str, float] = {}
        self._purged = 0.0

    async def aclose(self) -> None:
        self._db.close()

    async def take(self, key_id: str, cost: int, rate_per_s: float, burst: int) -> float:
        """Spend `cost` tokens of the key's bucket: 0.0 if granted, else seconds to wait.

        A refused request spends nothing.
        """
        held = self._leases.get(key_id, 0.0)
        if held >= cost:
            self._leases[key_id] = held - cost
            return 0.0
        need = cost - held
        lease = lease_size(burst)
        now = self._clock()
        with self._transaction():
            row = self._db.execute(
                "SELECT tokens, at FROM buckets WHERE key_id = ?", (key_id,)
            ).fetchone()
            tokens = float(burst) if row is None else row[0] + max(0.0, now - row[1]) * rate_per_s
            tokens = min(float(burst), tokens)
            if tokens < need:
                wait = (need - tokens) / rate_per_s
            else:
                taken = min(tokens, need + lease)
                tokens -= taken
                self._leases[key_id] = held + taken - cost
                wait = 0.0
            self._db.execute(
                "INSERT INTO buckets VALUES (?, ?, ?) ON CONFLICT (key_id) "
                "DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
                (key_id, tokens, now),
            )
        return wait

    async def first_use(self, key_id: str, nonce: str, exp: int) -> bool:
        """Record the nonce until `exp` (epoch s); False if it was already recorded."""
        now = self._clock()
        if now - self._purged >= PURGE_EVERY_S:
            self._purged = now
            self._db.execute("DELETE FROM nonces WHERE exp < ?", (int(now),))
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO nonces VALUES (?, ?, ?)", (key_id, nonce, exp)
        )
        return cursor.rowcount == 1

    async def forget(self, key_id: str, nonce: str) -> None:
        """Undo `first_use` for a request that was not counted (refused or not published)."""
        self._db.execute("DELETE FROM nonces WHERE key_id = ? AND nonce = ?", (key_id, nonce))

    def _transaction(self) -> _Immediate:
        return _Immediate(self._db)


class _Immediate:
    """``BEGIN IMMEDIATE`` … ``COMMIT``: takes the write lock first, so a read-modify-write
    of a bucket cannot interleave with another worker's."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
