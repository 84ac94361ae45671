"""`IngestService`: turns requests into validated `AdEvent`s and publishes them.

The service knows nothing of HTTP: it assigns event ids (UUIDv7, or the id derived from
an `Idempotency-Key` so a retried request carries the same id), stamps the time, checks
a whole batch before sending any of it, and returns only after Kafka acknowledged.

`Idempotency-Key` scope: the key is global (not per caller) and its ids are remembered
by the aggregator for its de-duplication window. A single-event id derives from the key,
the event type and the ad id. A batch entry's id derives from the key and the entry *as
the client sent it* (canonical JSON), plus its rank among identical entries: replaying a
batch, in any order, yields the same ids, so it counts exactly once; entries that differ
from the first attempt get new ids and are counted. Clients should use a fresh random
key (e.g. a UUID) per logical request.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from adstream.events import (
    AdEvent,
    Clock,
    EventTimeWindow,
    EventType,
    InvalidEventError,
    epoch_ms,
    id_for_key,
    uuid7,
)
from adstream.ingest.publisher import AdEventPublisher, Delivery

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


@dataclass(frozen=True, slots=True)
class Recorded:
    event: AdEvent
    delivery: Delivery


class InvalidIdempotencyKeyError(ValueError):
    """The `Idempotency-Key` is not 1-200 visible ASCII characters."""


class InvalidBatchError(ValueError):
    """Some batch entries are invalid; `errors` lists them by index. Nothing was published."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid entries")
        self.errors = errors


class IngestService:
    def __init__(
        self,
        publisher: AdEventPublisher,
        clock: Clock = epoch_ms,
        window: EventTimeWindow | None = None,
    ) -> None:
        self._publisher = publisher
        self._clock = clock
        self._window = window or EventTimeWindow()

    def _event_id(self, idempotency_key: str | None, scope: str) -> uuid.UUID:
        if idempotency_key is None:
            return uuid7()
        if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise InvalidIdempotencyKeyError(
                "Idempotency-Key must be 1-200 visible ASCII characters"
            )
        return id_for_key(idempotency_key, scope)

    def new_event(
        self, ad_id: str, event_type: EventType, idempotency_key: str | None = None
    ) -> AdEvent:
        """A validated event for one ad; raises on a bad adId or Idempotency-Key."""
        return AdEvent.create(
            event_id=self._event_id(idempotency_key, f"{event_type}/{ad_id}"),
            ad_id=ad_id,
            type=event_type,
            timestamp=self._clock(),
        )

    async def record(
        self, ad_id: str, event_type: EventType, idempotency_key: str | None = None
    ) -> Recorded:
        event = self.new_event(ad_id, event_type, idempotency_key)
        return Recorded(event, await self.publish(event))

    async def publish(self, event: AdEvent, caller: str | None = None) -> Delivery:
        """Publish one event made by `new_event`; returns once Kafka acknowledged it.

        `caller` (the authenticated sender's name) travels as a record header.
        """
        return await self._publisher.publish(event, caller)

    def parse_batch(
        self, entries: Sequence[object], idempotency_key: str | None = None
    ) -> list[AdEvent]:
        """Validate every entry; raise `InvalidBatchError` listing all bad ones, else the events.

        Missing fields get defaults: type impression, timestamp now, impressions 1, and an
        eventId (derived from the batch's `Idempotency-Key` and the entry, see above). A
        timestamp outside the event-time window around now is refused.
        """
        now = self._clock()
        events: list[AdEvent] = []
        errors: list[dict[str, Any]] = []
        seen: Counter[bytes] = Counter()
        fresh: Iterator[uuid.UUID] = iter(())
        if idempotency_key is None:  # new ids for the entries without one, made at once
            fresh = iter(
                uuid7.many(sum(isinstance(e, dict) and "eventId" not in e for e in entries))
            )
        for index, entry in enumerate(entries):
            try:
                if not isinstance(entry, dict):
                    raise InvalidEventError({"$": "must be a JSON object"})
                filled = {"type": EventType.IMPRESSION.value, "timestamp": now, **entry}
                new_id = None
                if "eventId" not in entry and idempotency_key is not None:
                    new_id = self._event_id(idempotency_key, _entry_scope(entry, seen))
                elif "eventId" not in entry:
                    new_id = next(fresh)
                event = AdEvent.from_dict(filled, event_id=new_id)
                late_or_early = self._window.violation(event.timestamp, now)
                if late_or_early is not None:
                    raise InvalidEventError({"timestamp": f"is {late_or_early}"})
                events.append(event)
            except InvalidEventError as exc:
                errors.append({"index": index, "errors": exc.errors})
        if errors:
            raise InvalidBatchError(errors)
        return events

    async def record_batch(self, events: Sequence[AdEvent], caller: str | None = None) -> int:
        """Publish all events; returns their number once all are acknowledged, else raises."""
        return await self._publisher.publish_many(events, caller)


def _entry_scope(entry: dict[Any, Any], seen: Counter[bytes]) -> str:
    """The entry's canonical JSON and its rank among identical entries of the batch."""
    try:
        canonical = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:  # not JSON-serializable: cannot come from a parsed body
        raise InvalidEventError({"$": "must be a JSON object"}) from exc
    rank = seen[canonical]
    seen[canonical] += 1
    return f"batch/{rank}/{canonical.decode()}"
