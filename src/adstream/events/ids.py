"""Event ids: time-ordered UUIDv7 for new events, a stable UUID for client retries.

UUIDv7 sorts by creation time, so ids double as a rough arrival order in logs and
stores. An `Idempotency-Key` maps to the same id every time, which lets a consumer
drop the duplicate a client retry produces.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

_IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0c8a52-6a0e-4c4e-9c1e-2f7f1d0e6a11")
_lock = threading.Lock()
_last_ms = 0
_seq = 0


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48-bit ms timestamp, 12-bit counter, 62 random bits.

    The counter keeps ids from one process strictly increasing within a millisecond.
    """
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        if ms <= _last_ms:
            _seq += 1
            if _seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        else:
            _last_ms, _seq = ms, 0
        seq = _seq
    # Not a secret, only unique: `random` is reseeded in each forked worker.
    rand = random.getrandbits(62)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
    return uuid.UUID(int=value)


def id_for_key(key: str, scope: str = "") -> uuid.UUID:
    """The event id for an `Idempotency-Key`: the same key (and scope) gives the same id."""
    return uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{scope}\x00{key}")
