"""The wall clock in epoch milliseconds, the one unit of time adstream stores."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


def epoch_ms() -> int:
    return time.time_ns() // 1_000_000
