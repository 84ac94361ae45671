"""Read-side of the counts: time ranges in, JSON-ready results out.

The HTTP routes stay thin; the rules (default range, limits, bucket shape) live here
and are tested without HTTP.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adstream.aggregate.model import MINUTE_MS
from adstream.aggregate.store import SqlCountStore
from adstream.events.limits import MAX_TIMESTAMP_MS

DEFAULT_RANGE_MS = 60 * MINUTE_MS
MAX_RANGE_MS = 31 * 24 * 60 * MINUTE_MS
MAX_TOP_MINUTES = 24 * 60
MAX_TOP_LIMIT = 100
MAX_INSTANT_CHARS = 64  # the longest ISO-8601 form is about 32 characters

_EPOCH_MS = re.compile(r"[0-9]+")  # ASCII only: isdigit() takes '²', int() Arabic-Indic digits
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)


class InvalidRangeError(ValueError):
    """``from``/``to`` do not make a usable time range.

    ``param`` names the query parameter at fault (``from`` or ``to``), or is None when
    only the pair is wrong (``from`` after ``to``, a range too long).
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def iso(ms: int) -> str:
    return (_EPOCH + ms * _ONE_MS).isoformat().replace("+00:00", "Z")


def parse_instant(value: str, param: str = "from") -> int:
    """Epoch milliseconds from ``1790000040000`` or an ISO-8601 time (UTC if no zone).

    Only ASCII input for times between 1970 and the end of year 9999 (the events' own timestamp
    bounds) is accepted, so no later date arithmetic or database query can overflow.
    """
    if len(value) > MAX_INSTANT_CHARS:
        raise InvalidRangeError(f"{param!r} may have at most {MAX_INSTANT_CHARS} characters", param)
    if _EPOCH_MS.fullmatch(value):
        ms = int(value)
    else:
        try:
            if not value.isascii():
                raise ValueError(value)
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidRangeError(
                f"{param!r}: {value!r} is neither epoch milliseconds (ASCII digits) "
                "nor an ISO-8601 time",
                param,
            ) from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        ms = (parsed - _EPOCH) // _ONE_MS  # exact, and no float or platform overflow
    if not 0 <= ms <= MAX_TIMESTAMP_MS:
        raise InvalidRangeError(
            f"{param!r} must be from 1970-01-01T00:00:00Z (0) to {iso(MAX_TIMESTAMP_MS)} "
            f"({MAX_TIMESTAMP_MS}) in epoch milliseconds",
            param,
        )
    return ms


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class CountQueries:
    store: SqlCountStore
    clock: Callable[[], int] = field(default=wall_clock_ms)

    def ad_stats(self, ad_id: str, start: str | None, end: str | None) -> dict[str, Any]:
        end_ms = parse_instant(end, "to") if end is not None else self.clock()
        start_ms = (
            parse_instant(start, "from") if start is not None else max(0, end_ms - DEFAULT_RANGE_MS)
        )
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
        top, (impressions, clicks, ads) = self.store.top_and_window_totals(since, limit)
        return {
            "minutes": minutes,
            "since": iso(since),
            "ads": [
                {"adId": t.ad_id, "impressions": t.impressions, "clicks": t.clicks} for t in top
            ],
            # Over every ad of the window, not only the listed ones (same snapshot).
            "total": {"impressions": impressions, "clicks": clicks, "ads": ads},
        }

    def totals(self) -> dict[str, int]:
        impressions, clicks, ads = self.store.grand_totals()
        return {"impressions": impressions, "clicks": clicks, "ads": ads}
