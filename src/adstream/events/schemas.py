"""`AdEvent`'s registered schemas (Avro and JSON Schema), by version, and their framings.

Version 1 is today's JSON wire form (the seed's ``adId``, ``timestamp``, ``impressions``
plus ``eventId`` and ``type``); version 2 adds an optional ``campaignId`` (default null).
Each version must stay readable by the previous one's readers and vice versa
(``BACKWARD`` compatibility, enforced by the registry): a new field needs a default, and
no field may be removed or change type. Records carry the schema's id in a framing:

- Confluent: ``0x00`` + 4-byte big-endian schema id + payload (Avro binary or JSON).
- AWS Glue: ``0x03`` + compression byte (0 none, 5 zlib) + 16-byte schema version UUID + payload.

Neither first byte can start a JSON document, so one topic can mix all formats.
"""

from __future__ import annotations

import copy
from typing import Any

from adstream.events.model import MAX_CAMPAIGN_ID, AdEvent

CURRENT_VERSION = 2
VERSIONS = (1, 2)
CONFLUENT_MAGIC = 0
GLUE_HEADER_VERSION = 3
NAMESPACE = "io.adstream"

_AVRO_V1: dict[str, Any] = {
    "type": "record",
    "name": "AdEvent",
    "namespace": NAMESPACE,
    "doc": "One ad impression or click (adstream wire format, version 1).",
    "fields": [
        {"name": "eventId", "type": "string", "doc": "UUID, for de-duplication"},
        {
            "name": "type",
            "type": {"type": "enum", "name": "EventType", "symbols": ["impression", "click"]},
        },
        {"name": "adId", "type": "string"},
        {"name": "timestamp", "type": "long", "doc": "event time, epoch milliseconds"},
        {"name": "impressions", "type": "int", "default": 1},
    ],
}
_CAMPAIGN_AVRO = {"name": "campaignId", "type": ["null", "string"], "default": None}

_JSON_V1: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "AdEvent",
    "description": "One ad impression or click (adstream wire format, version 1).",
    "type": "object",
    "additionalProperties": False,
    "required": ["eventId", "type", "adId", "timestamp"],
    "properties": {
        "eventId": {"type": "string", "format": "uuid"},
        "type": {"type": "string", "enum": ["impression", "click"]},
        "adId": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
        "timestamp": {"type": "integer", "minimum": 0},
        "impressions": {"type": "integer", "minimum": 1, "default": 1},
    },
}
_CAMPAIGN_JSON = {
    "type": ["string", "null"],
    "minLength": 1,
    "maxLength": MAX_CAMPAIGN_ID,
    "default": None,
}


def avro_schema(version: int = CURRENT_VERSION) -> dict[str, Any]:
    """The Avro schema of `version` (a fresh dict: callers may change it)."""
    schema = copy.deepcopy(_AVRO_V1)
    if version >= 2:
        schema["doc"] = schema["doc"].replace("version 1", "version 2")
        schema["fields"].append(dict(_CAMPAIGN_AVRO))
    _check(version)
    return schema


def json_schema(version: int = CURRENT_VERSION) -> dict[str, Any]:
    """The JSON Schema of `version` (a fresh dict: callers may change it)."""
    schema = copy.deepcopy(_JSON_V1)
    if version >= 2:
        schema["description"] = schema["description"].replace("version 1", "version 2")
        schema["properties"]["campaignId"] = dict(_CAMPAIGN_JSON)
    _check(version)
    return schema


def _check(version: int) -> None:
    if version not in VERSIONS:
        raise ValueError(f"AdEvent schema version {version} does not exist ({VERSIONS})")


def record_of(event: AdEvent, version: int = CURRENT_VERSION) -> dict[str, Any]:
    """The record a schema `version` describes (every field present, as Avro wants)."""
    record = event.to_dict()
    if version >= 2:
        record["campaignId"] = event.campaign_id
    else:
        record.pop("campaignId", None)
    return record


def framing_of(raw: bytes) -> str | None:
    """``"confluent"``, ``"glue"`` or None (not framed: plain JSON or garbage)."""
    if len(raw) >= 5 and raw[0] == CONFLUENT_MAGIC:
        return "confluent"
    if len(raw) >= 18 and raw[0] == GLUE_HEADER_VERSION:
        return "glue"
    return None
