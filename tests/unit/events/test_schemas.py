"""AdEvent's schemas by version, the record each describes, and the framings readers tell apart."""

from __future__ import annotations

import io
import uuid

import fastavro
import jsonschema
import orjson
import pytest

from adstream.events import AdEvent, EventType, InvalidEventError, schemas, wire


def _event(campaign: str | None = None) -> AdEvent:
    return AdEvent.create(
        event_id=uuid.UUID("0192f3a0-7c4e-7cc0-8d3e-1a2b3c4d5e6f"),
        ad_id="AD1",
        type=EventType.IMPRESSION,
        timestamp=5,
        impressions=2,
        campaign_id=campaign,
    )


def test_json_without_a_campaign_is_exactly_todays_format() -> None:
    assert orjson.loads(wire.value(_event())) == {
        "eventId": "0192f3a0-7c4e-7cc0-8d3e-1a2b3c4d5e6f",
        "type": "impression",
        "adId": "AD1",
        "timestamp": 5,
        "impressions": 2,
    }
    assert wire.decode(wire.value(_event("C-1"))).campaign_id == "C-1"


def test_campaign_id_is_validated() -> None:
    with pytest.raises(InvalidEventError, match="campaignId"):
        AdEvent.create(
            event_id=uuid.uuid4(), ad_id="A", type=EventType.CLICK, timestamp=1, campaign_id=""
        )


@pytest.mark.parametrize("version", schemas.VERSIONS)
def test_each_version_describes_its_record(version: int) -> None:
    record = schemas.record_of(_event("C-1"), version)
    assert ("campaignId" in record) is (version >= 2)
    parsed = fastavro.parse_schema(schemas.avro_schema(version))
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, record)
    out.seek(0)
    assert fastavro.schemaless_reader(out, parsed) == record
    jsonschema.validate(record, schemas.json_schema(version))


def test_v2_adds_only_an_optional_field_with_a_default() -> None:
    v1, v2 = schemas.avro_schema(1), schemas.avro_schema(2)
    assert v2["fields"][: len(v1["fields"])] == v1["fields"]
    [added] = v2["fields"][len(v1["fields"]) :]
    assert added == {"name": "campaignId", "type": ["null", "string"], "default": None}
    j1, j2 = schemas.json_schema(1), schemas.json_schema(2)
    assert j2["required"] == j1["required"]
    assert set(j2["properties"]) - set(j1["properties"]) == {"campaignId"}


@pytest.mark.parametrize(
    ("raw", "framing"),
    [
        (b'{"adId":"A"}', None),
        (b"\x00\x00\x00\x00\x01avro", "confluent"),
        (b"\x00\x00\x00", None),  # too short to carry a schema id
        (b"\x03\x00" + bytes(16) + b"x", "glue"),
        (b"\x03\x00", None),
    ],
)
def test_framing_is_told_from_the_first_byte(raw: bytes, framing: str | None) -> None:
    assert schemas.framing_of(raw) == framing


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version 3 does not exist"):
        schemas.avro_schema(3)
