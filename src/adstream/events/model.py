"""`AdEvent`, the one event type from the HTTP route to the database, and its validation.

Field names follow the seed's Kotlin `data class AdEvent(adId, timestamp, impressions)`,
plus `eventId` (for de-duplication) and `type` (impression or click), and since schema
version 2 an optional `campaignId` (absent from the JSON form when unset, so version-1
readers see exactly today's records).
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


_TYPE_OF: dict[object, EventType] = {t.value: t for t in EventType}
_WIRE_FIELDS = frozenset({"eventId", "type", "adId", "timestamp", "impressions", "campaignId"})
MAX_CAMPAIGN_ID = 128
_EVENT_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


class InvalidEventError(ValueError):
    """An event field is invalid; `errors` maps field name to reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


_KNOWN_AD_IDS: set[str] = set()
_MAX_KNOWN_AD_IDS = 10_000


def valid_ad_id(ad_id: object) -> bool:
    """Matches `AD_ID_PATTERN`; ids seen valid before skip the regex (a set lookup costs
    a tenth of it, and traffic repeats its ads). At most 10,000 remembered (< 1 MiB)."""
    if not isinstance(ad_id, str):
        return False
    if ad_id in _KNOWN_AD_IDS:
        return True
    if _AD_ID.fullmatch(ad_id) is None:
        return False
    if len(_KNOWN_AD_IDS) < _MAX_KNOWN_AD_IDS:
        _KNOWN_AD_IDS.add(ad_id)
    return True


@dataclass(frozen=True, slots=True)
class AdEvent:
    """One ad event. Construct through `AdEvent.create` or `from_dict` to get validation."""

    event_id: uuid.UUID
    ad_id: str
    type: EventType
    timestamp: int
    impressions: int = 1
    campaign_id: str | None = None

    @classmethod
    def create(
        cls,
        *,
        event_id: uuid.UUID,
        ad_id: str,
        type: EventType,
        timestamp: int,
        impressions: int = 1,
        campaign_id: str | None = None,
    ) -> AdEvent:
        errors = check_fields(ad_id, timestamp, impressions)
        if not _valid_campaign(campaign_id):
            errors["campaignId"] = _CAMPAIGN_RULE
        if errors:
            raise InvalidEventError(errors)
        return cls(event_id, ad_id, type, timestamp, impressions, campaign_id)

    def to_dict(self) -> dict[str, Any]:
        """The wire form: the seed's camelCase names (``campaignId`` only when set)."""
        data: dict[str, Any] = {
            "eventId": str(self.event_id),
            "type": self.type.value,
            "adId": self.ad_id,
            "timestamp": self.timestamp,
            "impressions": self.impressions,
        }
        if self.campaign_id is not None:
            data["campaignId"] = self.campaign_id
        return data

    @classmethod
    def from_dict(cls, data: object, *, event_id: uuid.UUID | None = None) -> AdEvent:
        """Parse the wire form; raises `InvalidEventError` listing every bad field.

        `event_id` is used when `data` has no `eventId` (new events from a client).
        """
        wire_id, event_type, ad_id, timestamp, impressions = parse_wire(
            data, id_required=event_id is None
        )
        if wire_id is not None:
            event_id = uuid.UUID(wire_id)
        assert event_id is not None
        campaign_id = data.get("campaignId")  # type: ignore[attr-defined]  # parse_wire: a dict
        return cls(event_id, ad_id, event_type, timestamp, impressions, campaign_id)


WireFields = tuple[str | None, EventType, str, int, int]
"""(eventId as a lowercase canonical UUID string, type, adId, timestamp, impressions)."""


def parse_wire(data: object, *, id_required: bool = True) -> WireFields:
    """Validate the wire form without building an `AdEvent`: the one set of wire rules.

    The aggregator counts from these fields directly (no UUID object per event); the
    event id must be a UUID in its canonical 36-character form.
    """
    if not isinstance(data, dict):
        raise InvalidEventError({"$": "must be a JSON object"})
    errors: dict[str, str] = {}
    if not data.keys() <= _WIRE_FIELDS:
        unknown = set(data) - _WIRE_FIELDS
        errors["$"] = f"unknown fields: {', '.join(sorted(map(str, unknown)))}"
    wire_id = data.get("eventId")
    if wire_id is not None or id_required:
        if isinstance(wire_id, str) and _EVENT_ID.fullmatch(wire_id):
            wire_id = wire_id.lower()
        else:
            errors["eventId"] = "must be a UUID string (8-4-4-4-12 hex digits)"
    event_type = _TYPE_OF.get(data.get("type"))
    if event_type is None:
        errors["type"] = "must be 'impression' or 'click'"
    ad_id, timestamp = data.get("adId"), data.get("timestamp")
    impressions = data.get("impressions", 1)
    errors.update(check_fields(ad_id, timestamp, impressions))
    if not _valid_campaign(data.get("campaignId")):
        errors["campaignId"] = _CAMPAIGN_RULE
    if errors:
        raise InvalidEventError(errors)
    return wire_id, event_type, ad_id, timestamp, impressions  # type: ignore[return-value]


_CAMPAIGN_RULE = f"must be null or a string of 1 to {MAX_CAMPAIGN_ID} characters"


def _valid_campaign(value: object) -> bool:
    return value is None or (isinstance(value, str) and 0 < len(value) <= MAX_CAMPAIGN_ID)


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
