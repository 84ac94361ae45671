"""AWS Glue Schema Registry, offline: moto's Glue mock stores registries, schemas and versions.

moto does not run Glue's schema evolution check (every version it stores is AVAILABLE,
compatible or not), so the refusal path is driven by botocore's Stubber replaying the
responses the real service gives (a version in FAILURE status). Other gaps seen: moto
has no ``ListSchemaVersions``, and its ``GetSchemaByDefinition`` answers "schema not
found" for a new version of an existing schema, so the library first tries to create the
schema again (and logs that it already exists) before registering the version.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_schema_registry import SchemaRegistryClient
from botocore.stub import Stubber
from moto import mock_aws

from adstream.aggregate.decoding import tally_of
from adstream.events import AdEvent, EventTimeWindow, EventType, schemas, wire
from adstream.events.formats import EventFormat, UndecodableValueError
from adstream.kafka.glue_registry import GlueDecoder, GlueEncoder
from adstream.kafka.schema_registry import IncompatibleSchemaError
from adstream.kafka.schema_settings import SchemaSettings, event_encoder, framed_decoder

REGION = "eu-west-1"
FORMATS = (EventFormat.AVRO, EventFormat.JSONSCHEMA)
GLUE_FORMAT = {EventFormat.AVRO: "AVRO", EventFormat.JSONSCHEMA: "JSON"}


@pytest.fixture
def glue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("glue", region_name=REGION)
        client.create_registry(RegistryName="adstream")
        yield client


@pytest.fixture
def registry(glue: Any) -> SchemaRegistryClient:
    return SchemaRegistryClient(glue, registry_name="adstream")


def _event(campaign: str | None = None) -> AdEvent:
    return AdEvent.create(
        event_id=uuid.uuid4(),
        ad_id="AD1",
        type=EventType.CLICK,
        timestamp=1_000,
        campaign_id=campaign,
    )


@pytest.mark.parametrize("event_format", FORMATS)
def test_round_trip_with_glue_framing_and_a_backward_schema(
    registry: SchemaRegistryClient, glue: Any, event_format: EventFormat
) -> None:
    encoder = GlueEncoder(registry, event_format, "ad-events")
    sent = _event("C-1")
    raw = encoder.value(sent)
    assert raw[0] == schemas.GLUE_HEADER_VERSION
    assert uuid.UUID(bytes=raw[2:18]) == encoder.version_id
    assert GlueDecoder(registry)(raw) == {**sent.to_dict(), "campaignId": "C-1"}
    assert wire.caller_of(encoder.headers(sent)) is None
    assert wire.caller_of(encoder.headers(sent, "adserver-eu")) == "adserver-eu"
    schema = glue.get_schema(SchemaId={"RegistryName": "adstream", "SchemaName": "ad-events-value"})
    assert (schema["Compatibility"], schema["DataFormat"]) == (
        "BACKWARD",
        GLUE_FORMAT[event_format],
    )


@pytest.mark.parametrize("event_format", FORMATS)
def test_v1_then_v2_are_two_versions_and_both_decode(
    registry: SchemaRegistryClient, glue: Any, event_format: EventFormat
) -> None:
    v1 = GlueEncoder(registry, event_format, "ad-events", version=1)
    v2 = GlueEncoder(registry, event_format, "ad-events", version=2)
    assert v1.version_id != v2.version_id
    numbers = [
        glue.get_schema_version(SchemaVersionId=str(e.version_id))["VersionNumber"]
        for e in (v1, v2)
    ]
    assert numbers == [1, 2]
    plain, tagged = _event(), _event("C-2")
    reader = GlueDecoder(registry)
    assert reader(v1.value(plain)) == plain.to_dict()
    assert reader(v2.value(tagged))["campaignId"] == "C-2"


def test_the_aggregator_counts_a_glue_record(registry: SchemaRegistryClient) -> None:
    raw = GlueEncoder(registry, EventFormat.AVRO, "ad-events").value(_event())
    tally = tally_of(raw, 2_000, EventTimeWindow(), GlueDecoder(registry))
    assert (tally.ad_id, tally.clicks, tally.impressions) == ("AD1", 1, 0)


def test_an_unknown_schema_version_is_undecodable(registry: SchemaRegistryClient) -> None:
    raw = b"\x03\x00" + uuid.uuid4().bytes + b"payload"
    with pytest.raises(UndecodableValueError, match="is unknown"):
        GlueDecoder(registry)(raw)


def test_settings_pick_glue_for_both_sides(glue: Any) -> None:
    settings = SchemaSettings(format="avro", registry="glue", glue_region=REGION)
    encoder = event_encoder(settings, "ad-events")
    assert isinstance(encoder, GlueEncoder)
    decoder = framed_decoder(settings)
    assert decoder is not None
    assert decoder(encoder.value(_event()))["adId"] == "AD1"


def test_a_version_glue_refuses_is_reported_with_subject_and_rule() -> None:
    """What the real service answers for an incompatible version: PENDING, then FAILURE."""
    glue = boto3.client(
        "glue", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    version_id = str(uuid.uuid4())
    with Stubber(glue) as stub:
        stub.add_client_error(
            "get_schema_by_definition",
            service_error_code="EntityNotFoundException",
            service_message="Schema version is not found.",
        )
        stub.add_response(
            "register_schema_version",
            {"SchemaVersionId": version_id, "VersionNumber": 2, "Status": "PENDING"},
        )
        stub.add_response(
            "get_schema_version", {"SchemaVersionId": version_id, "Status": "FAILURE"}
        )
        client = SchemaRegistryClient(glue, registry_name="adstream", wait_interval_seconds=0)
        with pytest.raises(IncompatibleSchemaError) as refused:
            GlueEncoder(client, EventFormat.AVRO, "ad-events")
    assert refused.value.subject == "ad-events-value"
    assert refused.value.compatibility == "BACKWARD"
    assert "FAILURE" in str(refused.value)
