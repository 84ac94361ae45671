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
from collections.abc import Callable

_IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0c8a52-6a0e-4c4e-9c1e-2f7f1d0e6a11")


class Uuid7Generator:
    """UUIDv7s (RFC 9562): 48-bit ms timestamp, 12-bit counter, 62 random bits.

    The counter keeps ids from one generator strictly increasing within a millisecond,
    and across a clock step back.
    """

    def __init__(self, clock_ms: Callable[[], int] | None = None) -> None:
        self._clock = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0

    def _reserve(self, count: int) -> int:
        """Take `count` consecutive slots; the first as `ms << 12 | counter`.

        A slot after the last one handed out when the clock has not moved past it (a
        full counter carries into the next millisecond), else the clock's first slot.
        """
        with self._lock:
            ms = self._clock()
            first = (self._last_ms << 12 | self._seq) + 1 if ms <= self._last_ms else ms << 12
            last = first + count - 1
            self._last_ms, self._seq = last >> 12, last & 0xFFF
        return first

    def __call__(self) -> uuid.UUID:
        # Not a secret, only unique: `random` is reseeded in each forked worker.
        return _uuid_of(_bits(self._reserve(1)) | random.getrandbits(62))

    def many(self, count: int) -> list[uuid.UUID]:
        """`count` ids in increasing order, for a batch: one lock and one clock read for
        all of them (~0.6 µs per id instead of ~1.2 µs)."""
        if count <= 0:
            return []
        first = self._reserve(count)
        rand = random.getrandbits
        return [_uuid_of(_bits(slot) | rand(62)) for slot in range(first, first + count)]


_MS_MASK = (1 << 48) - 1
_VERSION_AND_VARIANT = 0x7 << 76 | 0b10 << 62


def _bits(slot: int) -> int:
    """The UUIDv7 of slot `ms << 12 | counter`, without its 62 random bits."""
    return ((slot >> 12) & _MS_MASK) << 80 | (slot & 0xFFF) << 64 | _VERSION_AND_VARIANT


_new = object.__new__
_set = object.__setattr__


def _uuid_of(value: int) -> uuid.UUID:
    """`uuid.UUID(int=value)` for a value known to be a 128-bit int: what its `__init__`
    stores, without the argument checks (0.2 µs instead of 0.5 µs, once per batch event)."""
    made: uuid.UUID = _new(uuid.UUID)
    _set(made, "int", value)
    _set(made, "is_safe", uuid.SafeUUID.unknown)
    return made


uuid7 = Uuid7Generator()
"""The process-wide generator of new event ids."""


def id_for_key(key: str, scope: str = "") -> uuid.UUID:
    """The event id for an `Idempotency-Key`: the same key (and scope) gives the same id."""
    return uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{scope}\x00{key}")
