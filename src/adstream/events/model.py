"""`AdEvent`, the one event type from the HTTP route to the database, and its validation.

Field names follow the seed's Kotlin `data class AdEvent(adId, timestamp, impressions)`,
plus `eventId` (for de-duplication) and `type` (impression or click).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from adstream.events.limits import (
    AD_ID_PATTERN,
    MAX_IMPRESSIONS,
    MAX_TIMESTAMP_MS,
    MIN_IMPRESSIONS,
)

_AD_ID = re.compile(AD_ID_PATTERN)


class EventType(StrEnum):
    IMPRESSION = "impression"
    CLICK = "click"


_TYPES = frozenset(t.value for t in EventType)


class InvalidEventError(ValueError):
    """An event field is invalid; `errors` maps field name to reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def valid_ad_id(ad_id: object) -> bool:
    return isinstance(ad_id, str) and _AD_ID.fullmatch(ad_id) is not None


@dataclass(frozen=True, slots=True)
class AdEvent:
    """One ad event. Construct through `AdEvent.create` or `from_dict` to get validation."""

    event_id: uuid.UUID
    ad_id: str
    type: EventType
    timestamp: int
    impressions: int = 1

    @classmethod
    def create(
        cls,
        *,
        event_id: uuid.UUID,
        ad_id: str,
        type: EventType,
        timestamp: int,
        impressions: int = 1,
    ) -> AdEvent:
        errors = check_fields(ad_id, timestamp, impressions)
        if errors:
            raise InvalidEventError(errors)
        return cls(event_id, ad_id, type, timestamp, impressions)

    def to_dict(self) -> dict[str, Any]:
        """The wire form: the seed's camelCase names."""
        return {
            "eventId": str(self.event_id),
            "type": self.type.value,
            "adId": self.ad_id,
            "timestamp": self.timestamp,
            "impressions": self.impressions,
        }

    @classmethod
    def from_dict(cls, data: object, *, event_id: uuid.UUID | None = None) -> AdEvent:
        """Parse the wire form; raises `InvalidEventError` listing every bad field.

        `event_id` is used when `data` has no `eventId` (new events from a client).
        """
        if not isinstance(data, dict):
            raise InvalidEventError({"$": "must be a JSON object"})
        errors: dict[str, str] = {}
        unknown = set(data) - {"eventId", "type", "adId", "timestamp", "impressions"}
        if unknown:
            errors["$"] = f"unknown fields: {', '.join(sorted(map(str, unknown)))}"
        if event_id is None or "eventId" in data:
            event_id = _parse_uuid(data.get("eventId"), errors)
        event_type = _parse_type(data.get("type"), errors)
        ad_id, timestamp = data.get("adId"), data.get("timestamp")
        impressions = data.get("impressions", 1)
        errors.update(check_fields(ad_id, timestamp, impressions))
        if errors or event_id is None or event_type is None:
            raise InvalidEventError(errors or {"$": "invalid"})
        assert isinstance(ad_id, str)
        assert isinstance(timestamp, int)
        assert isinstance(impressions, int)
        return cls(event_id, ad_id, event_type, timestamp, impressions)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_fields(ad_id: object, timestamp: object, impressions: object) -> dict[str, str]:
    """The reason per invalid field (empty when all are valid): the one set of field rules."""
    errors: dict[str, str] = {}
    if not valid_ad_id(ad_id):
        errors["adId"] = f"must match {AD_ID_PATTERN}"
    if not _is_int(timestamp) or not 0 <= timestamp <= MAX_TIMESTAMP_MS:  # type: ignore[operator]
        errors["timestamp"] = "must be epoch milliseconds (integer >= 0)"
    if not _is_int(impressions) or not MIN_IMPRESSIONS <= impressions <= MAX_IMPRESSIONS:  # type: ignore[operator]
        errors["impressions"] = f"must be an integer from {MIN_IMPRESSIONS} to {MAX_IMPRESSIONS}"
    return errors


def _parse_uuid(value: object, errors: dict[str, str]) -> uuid.UUID | None:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    errors["eventId"] = "must be a UUID string"
    return None


def _parse_type(value: object, errors: dict[str, str]) -> EventType | None:
    if isinstance(value, str) and value in _TYPES:
        return EventType(value)
    errors["type"] = "must be 'impression' or 'click'"
    return None
