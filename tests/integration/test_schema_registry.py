"""Avro and JSON Schema through the real local registry (Apicurio) and the real broker.

Each test uses its own topic, so its own subject (``<topic>-value``) in the session's
registry: registrations of one test never make another's incompatible.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from adstream.aggregate.dead_letters import REASON_HEADER
from adstream.aggregate.store import SqlCountStore
from adstream.cli import app as cli
from adstream.events import schemas
from adstream.events.formats import CONTENT_TYPES, EventFormat, RegistryUnavailableError
from adstream.events.wire import HEADER_CONTENT_TYPE, key
from adstream.ingest.app import create_app
from adstream.ingest.config import ApiSettings
from adstream.kafka.schema_registry import (
    IncompatibleSchemaError,
    RegistryDecoder,
    RegistryEncoder,
    register,
    subject_for,
)
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import local_kafka_settings
from adstream.local.ports import port_free
from adstream.local.registry import LocalRegistry, PostgresStorage
from tests.integration.aggregate_helpers import (
    RECENT_MINUTE,
    PrivateTopic,
    RunningAggregator,
    admin_producer,
    event,
    send_event,
    wait_until,
)
from tests.integration.kafka_helpers import read_all
from tests.support.ports import free_port
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration

T0 = RECENT_MINUTE
REGISTRY_FORMATS = (EventFormat.AVRO, EventFormat.JSONSCHEMA)


@pytest.fixture
def client(schema_registry: LocalRegistry) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": schema_registry.url})


def _api(broker: LocalBroker, topic: str, encoder: RegistryEncoder) -> TestClient:
    settings = local_kafka_settings(broker.layout, broker.ports, "admin")
    return TestClient(create_app(settings, ApiSettings(topic=topic), encoder=encoder))


def _send(producer: Producer, topic: str, encoder: RegistryEncoder, *events: object) -> None:
    for item in events:
        producer.produce(
            topic, key=key(item), value=encoder.value(item), headers=encoder.headers(item)
        )  # type: ignore[arg-type]


@pytest.mark.parametrize("event_format", REGISTRY_FORMATS)
def test_the_api_publishes_registry_framed_records_that_decode_back_to_the_event(
    broker: LocalBroker,
    topic: PrivateTopic,
    client: SchemaRegistryClient,
    event_format: EventFormat,
) -> None:
    encoder = RegistryEncoder(client, event_format, topic.topic)
    batch = [{"adId": "AD2", "timestamp": T0 + 2, "impressions": 3, "campaignId": "C-1"}]
    with _api(broker, topic.topic, encoder) as http:
        click = http.post("/ads/AD1/click")
        accepted = http.post("/events", json=batch)
    assert click.status_code == 200, click.text
    assert accepted.status_code == 200, accepted.text
    records = sorted(read_all(broker, topic.topic, 2), key=lambda m: m.key() or b"")
    for record in records:
        raw = record.value()
        assert raw[0] == schemas.CONFLUENT_MAGIC
        assert int.from_bytes(raw[1:5], "big") == encoder.schema_id
        content_type = dict(record.headers())[HEADER_CONTENT_TYPE]
        assert content_type == CONTENT_TYPES[event_format].encode()
    reader = RegistryDecoder(client)
    clicked, batched = (reader(record.value()) for record in records)
    assert clicked["eventId"] == click.headers["X-Event-Id"]
    assert (clicked["adId"], clicked["type"], clicked["campaignId"]) == ("AD1", "click", None)
    assert {k: v for k, v in batched.items() if k != "eventId"} == {
        "type": "impression",
        **batch[0],
    }
    assert client.get_latest_version(subject_for(topic.topic)).schema_id == encoder.schema_id


def test_the_aggregator_counts_every_format_on_one_topic(
    broker: LocalBroker,
    topic: PrivateTopic,
    store: SqlCountStore,
    client: SchemaRegistryClient,
) -> None:
    producer = admin_producer(broker)
    avro = RegistryEncoder(client, EventFormat.AVRO, topic.topic)
    _send(
        producer, topic.topic, avro, event("AD1", T0, impressions=2), event("AD1", T0, click=True)
    )
    # A subject holds one schema type, so JSON Schema registers under a sibling topic's
    # subject; the record still goes to this topic (readers look up ids, not subjects).
    jsonschema = RegistryEncoder(client, EventFormat.JSONSCHEMA, topic.topic + "-js")
    _send(producer, topic.topic, jsonschema, event("AD1", T0, impressions=3))
    send_event(producer, topic.topic, event("AD1", T0, impressions=5))  # today's JSON
    seed = {"adId": "AD1", "timestamp": T0, "impressions": 7}  # Spring JsonSerializer's
    producer.produce(topic.topic, key=b"AD1", value=json.dumps(seed).encode())
    assert producer.flush(20) == 0
    with RunningAggregator(broker, topic, store, framed=RegistryDecoder(client)) as running:
        wait_until(lambda: running.counted("counted") == 5, state=store.totals)
    assert list(store.totals()) == [("AD1", T0, 2 + 3 + 5 + 7, 1)]
    assert running.counted("dead_letter") == 0


def test_avro_v1_and_v2_are_read_by_old_and_new_readers(
    topic: PrivateTopic, client: SchemaRegistryClient
) -> None:
    v1 = RegistryEncoder(client, EventFormat.AVRO, topic.topic, version=1)
    v2 = RegistryEncoder(client, EventFormat.AVRO, topic.topic, version=2)  # BACKWARD: accepted
    assert v2.schema_id != v1.schema_id
    plain = event("AD1", T0)
    tagged = event("AD2", T0).__class__.create(
        event_id=plain.event_id, ad_id="AD2", type=plain.type, timestamp=T0, campaign_id="C-7"
    )
    old_record, new_record = v1.value(plain), v2.value(tagged)

    old_reader, new_reader = RegistryDecoder(client, 1), RegistryDecoder(client, 2)
    assert "campaignId" not in old_reader(old_record)
    assert "campaignId" not in old_reader(new_record)  # v1 reader drops the new field
    assert old_reader(new_record)["adId"] == "AD2"
    assert new_reader(old_record)["campaignId"] is None  # v2 reader fills in the default
    assert new_reader(new_record)["campaignId"] == "C-7"
    versions = client.get_versions(subject_for(topic.topic))
    assert len(versions) == 2


def test_json_schema_v2_is_accepted_after_v1_and_reads_both(
    topic: PrivateTopic, client: SchemaRegistryClient
) -> None:
    v1 = RegistryEncoder(client, EventFormat.JSONSCHEMA, topic.topic, version=1)
    v2 = RegistryEncoder(client, EventFormat.JSONSCHEMA, topic.topic, version=2)
    base = event("AD1", T0)
    tagged = base.__class__.create(
        event_id=base.event_id, ad_id="AD1", type=base.type, timestamp=T0, campaign_id="C-1"
    )
    reader = RegistryDecoder(client)
    assert reader(v1.value(base)) == base.to_dict()
    assert reader(v2.value(tagged)) == {**base.to_dict(), "campaignId": "C-1"}
    assert len(client.get_versions(subject_for(topic.topic))) == 2


@pytest.mark.parametrize("event_format", REGISTRY_FORMATS)
def test_an_incompatible_schema_is_refused_naming_subject_and_rule(
    topic: PrivateTopic, client: SchemaRegistryClient, event_format: EventFormat
) -> None:
    """Someone registered a campaignId of another type first: adstream's v2 cannot read
    that data, so the registry refuses it and the encoder (the API's start) says so."""
    subject = subject_for(topic.topic)
    if event_format is EventFormat.AVRO:
        other = schemas.avro_schema(1)
        other["fields"].append({"name": "campaignId", "type": "long", "default": 0})
        register(client, subject, Schema(json.dumps(other), "AVRO"))
    else:
        other = schemas.json_schema(1)
        other["properties"]["campaignId"] = {"type": "integer"}
        register(client, subject, Schema(json.dumps(other), "JSON"))
    with pytest.raises(IncompatibleSchemaError) as refused:
        RegistryEncoder(client, event_format, topic.topic, version=2)
    assert refused.value.subject == subject
    assert refused.value.compatibility == "BACKWARD"
    assert f"subject {subject!r}" in str(refused.value)
    assert "not BACKWARD compatible" in str(refused.value)
    assert "incompatible" in refused.value.detail.lower()  # the registry's own diagnosis
    assert len(client.get_versions(subject)) == 1  # nothing was registered


def test_framed_records_no_schema_reads_are_dead_letters_kept_byte_for_byte(
    broker: LocalBroker,
    topic: PrivateTopic,
    store: SqlCountStore,
    client: SchemaRegistryClient,
) -> None:
    producer = admin_producer(broker)
    avro = RegistryEncoder(client, EventFormat.AVRO, topic.topic)
    good = avro.value(event("AD1", T0))
    unknown = b"\x00" + (2**31 - 1).to_bytes(4, "big") + good[5:]
    truncated = good[:12]
    for value in (unknown, truncated, good):
        producer.produce(topic.topic, key=b"AD1", value=value)
    assert producer.flush(20) == 0
    with RunningAggregator(broker, topic, store, framed=RegistryDecoder(client)) as running:
        wait_until(lambda: running.counted("dead_letter") == 2 and running.counted("counted") == 1)
    letters = read_all(broker, topic.dead_letters, 2)
    assert [letter.value() for letter in letters] == [unknown, truncated]
    reasons = [dict(letter.headers())[REASON_HEADER].decode() for letter in letters]
    assert reasons[0] == (
        f"confluent-framed record: schema id {2**31 - 1} is unknown to the registry"
    )
    assert reasons[1].startswith(f"confluent-framed record: schema id {avro.schema_id}: EOFError")


def test_an_unreachable_registry_delays_the_batch_without_dead_letters(
    broker: LocalBroker,
    topic: PrivateTopic,
    store: SqlCountStore,
    client: SchemaRegistryClient,
) -> None:
    """The record is fine, only its schema cannot be fetched yet: the batch is read again."""
    producer = admin_producer(broker)
    avro = RegistryEncoder(client, EventFormat.AVRO, topic.topic)
    _send(producer, topic.topic, avro, event("AD1", T0, impressions=4))
    assert producer.flush(20) == 0
    real = RegistryDecoder(client)
    failures: list[bytes] = []

    def flaky(raw: bytes) -> dict[str, object]:
        if len(failures) < 2:
            failures.append(raw)
            raise RegistryUnavailableError("connection refused")
        return real(raw)

    with RunningAggregator(broker, topic, store, framed=flaky, blocked_retry_s=0.1) as running:
        wait_until(lambda: running.counted("counted") == 1)
    assert len(failures) == 2
    assert running.counted("dead_letter") == 0
    assert list(store.totals()) == [("AD1", T0, 4, 0)]


def test_the_local_registry_keeps_schemas_in_postgresql_across_restarts(
    tmp_path: Path, schema_registry: LocalRegistry, postgres: PostgresServer
) -> None:
    """`adstream registry up --postgres URL`: a restarted registry still knows its schemas."""
    url = postgres.new_database()
    port = free_port()
    while not port_free(port + 1):
        port = free_port()
    registry = LocalRegistry(
        tmp_path / "registry",
        schema_registry.dist,
        port=port,
        heap_mb=256,
        storage=PostgresStorage.from_url(url),
    )
    registry.up()
    try:
        assert registry.status().state.storage == "postgresql"  # type: ignore[union-attr]
        first = RegistryEncoder(
            SchemaRegistryClient({"url": registry.url}), EventFormat.AVRO, "kept"
        ).schema_id
        registry.down()
        registry.up()
        client = SchemaRegistryClient({"url": registry.url})
        assert client.get_latest_version("kept-value").schema_id == first
        assert registry.status().compatibility == "BACKWARD"
    finally:
        registry.down()


def test_serve_refuses_to_start_on_an_incompatible_schema_and_says_why(
    broker: LocalBroker,
    topic: PrivateTopic,
    client: SchemaRegistryClient,
    schema_registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = schemas.avro_schema(1)
    other["fields"].append({"name": "campaignId", "type": "long", "default": 0})
    register(client, subject_for(topic.topic), Schema(json.dumps(other), "AVRO"))
    monkeypatch.setenv("ADSTREAM_SCHEMA_FORMAT", "avro")
    monkeypatch.setenv("ADSTREAM_SCHEMA_REGISTRY_URL", schema_registry.url)
    monkeypatch.setenv("ADSTREAM_API_TOPIC", topic.topic)
    properties = broker.layout.client_properties("tls")
    result = CliRunner().invoke(cli, ["serve", "--kafka-config", str(properties)])
    assert result.exit_code == 2, result.output
    assert f"subject '{subject_for(topic.topic)}'" in result.output
    assert "not BACKWARD compatible" in result.output
