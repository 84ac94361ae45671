"""Read-side of the counts: time ranges in, JSON-ready results out.

The HTTP routes stay thin; the rules (default range, limits, bucket shape) live here
and are tested without HTTP.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adstream.aggregate.model import MINUTE_MS
from adstream.aggregate.store import SqlCountStore

DEFAULT_RANGE_MS = 60 * MINUTE_MS
MAX_RANGE_MS = 31 * 24 * 60 * MINUTE_MS


class InvalidRangeError(ValueError):
    """``from``/``to`` do not make a usable time range."""


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def parse_instant(value: str) -> int:
    """Epoch milliseconds from ``1790000040000`` or an ISO-8601 time (UTC if no zone)."""
    if value.isdigit():
        return int(value)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRangeError(
            f"{value!r} is neither epoch milliseconds nor an ISO-8601 time"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class CountQueries:
    store: SqlCountStore
    clock: Callable[[], int] = field(default=wall_clock_ms)

    def ad_stats(self, ad_id: str, start: str | None, end: str | None) -> dict[str, Any]:
        end_ms = parse_instant(end) if end else self.clock()
        start_ms = parse_instant(start) if start else end_ms - DEFAULT_RANGE_MS
        if start_ms >= end_ms:
            raise InvalidRangeError("'from' must be before 'to'")
        if end_ms - start_ms > MAX_RANGE_MS:
            raise InvalidRangeError("the range may span at most 31 days")
        buckets = self.store.stats(ad_id, start_ms - start_ms % MINUTE_MS, end_ms)
        return {
            "adId": ad_id,
            "from": iso(start_ms),
            "to": iso(end_ms),
            "minutes": [
                {"minute": iso(b.minute), "impressions": b.impressions, "clicks": b.clicks}
                for b in buckets
            ],
            "totals": {
                "impressions": sum(b.impressions for b in buckets),
                "clicks": sum(b.clicks for b in buckets),
            },
        }

    def top_ads(self, minutes: int, limit: int) -> dict[str, Any]:
        now_ms = self.clock()
        current_minute = now_ms - now_ms % MINUTE_MS
        since = current_minute - (minutes - 1) * MINUTE_MS
        return {
            "minutes": minutes,
            "since": iso(since),
            "ads": [
                {"adId": t.ad_id, "impressions": t.impressions, "clicks": t.clicks}
                for t in self.store.top(since, limit)
            ],
        }

    def totals(self) -> dict[str, int]:
        impressions, clicks, ads = self.store.grand_totals()
        return {"impressions": impressions, "clicks": clicks, "ads": ads}
