"""The limits every producer and consumer of `AdEvent` agrees on, defined once.

The API refuses events outside them (422), and the aggregator sends records outside
them to the dead-letter topic, so an event the API accepted is always countable.
"""

from __future__ import annotations

from dataclasses import dataclass

AD_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MIN_IMPRESSIONS = 1
MAX_IMPRESSIONS = 1_000_000
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_BATCH_EVENTS = 1000

HOUR_MS = 3_600_000
DEFAULT_MAX_EVENT_AGE_MS = 7 * 24 * HOUR_MS
DEFAULT_MAX_EVENT_AHEAD_MS = 5 * 60_000


def _duration(ms: int) -> str:
    for unit, size in (("day", 24 * HOUR_MS), ("hour", HOUR_MS), ("minute", 60_000)):
        if ms >= size and ms % size == 0:
            count = ms // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{ms} ms"


@dataclass(frozen=True, slots=True)
class EventTimeWindow:
    """How far an event's own timestamp may lie from the time it was received.

    A client's clock decides the event's minute, never anything else: the reference is
    the receiver's clock (the API) or the Kafka record's timestamp (the aggregator).
    """

    max_age_ms: int = DEFAULT_MAX_EVENT_AGE_MS
    max_ahead_ms: int = DEFAULT_MAX_EVENT_AHEAD_MS

    def __post_init__(self) -> None:
        if self.max_age_ms < 0 or self.max_ahead_ms < 0:
            raise ValueError("event time limits must not be negative")

    def violation(self, timestamp: int, received_ms: int) -> str | None:
        """Why `timestamp` is outside the window around `received_ms`, or None."""
        if timestamp < received_ms - self.max_age_ms:
            return f"more than {_duration(self.max_age_ms)} in the past"
        if timestamp > received_ms + self.max_ahead_ms:
            return f"more than {_duration(self.max_ahead_ms)} in the future"
        return None

    def widened(self, by_ms: int) -> EventTimeWindow:
        """The same window with `by_ms` of slack on both sides."""
        return EventTimeWindow(self.max_age_ms + by_ms, self.max_ahead_ms + by_ms)
