"""Avro and JSON Schema through a Confluent-compatible schema registry (Confluent, Apicurio).

Settings (`kafka.schema_settings`) say which format producers write and where the registry
is. The producer side registers `AdEvent`'s schema for the subject ``<topic>-value``
(TopicNameStrategy, ``ad-events-value``) once, at start: a schema the registry refuses
raises `IncompatibleSchemaError` naming the subject and the compatibility rule, before any
event is accepted. Each record is then framed the Confluent way (``0x00``, schema id).
The reader side decodes any framed record by its schema id, whatever format and version
wrote it; with a `reader_version` an Avro payload is resolved to that version's fields
(an old reader drops ``campaignId``, a new one fills in its default).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import fastavro
import fastavro.schema
import orjson
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.common._httpx_compat import httpx as registry_http
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from adstream.events import schemas, wire
from adstream.events.formats import (
    EventFormat,
    RegistryUnavailableError,
    UndecodableValueError,
    registry_headers,
)
from adstream.events.model import AdEvent
from adstream.events.wire import Headers
from adstream.kafka.schema_settings import SchemaSettings

TOPIC_NAMES: dict[str, Any] = {"subject.name.strategy": topic_subject_name_strategy}
"""Subjects by TopicNameStrategy, computed locally. confluent-kafka 2.16's default asks the
registry for the topic's subject "associations" on each new topic, an API that Apicurio
and Confluent Platform do not serve (one such lookup hung in a benchmark run)."""


def registry_client(settings: SchemaSettings) -> SchemaRegistryClient:
    return SchemaRegistryClient(settings.client_conf())


def subject_for(topic: str) -> str:
    """TopicNameStrategy: the value schema of ``ad-events`` is ``ad-events-value``."""
    return f"{topic}-value"


def schema_of(event_format: EventFormat, version: int = schemas.CURRENT_VERSION) -> Schema:
    """`AdEvent`'s schema of `version` in `event_format` (avro or jsonschema)."""
    if event_format is EventFormat.AVRO:
        return Schema(json.dumps(schemas.avro_schema(version)), "AVRO")
    if event_format is EventFormat.JSONSCHEMA:
        return Schema(json.dumps(schemas.json_schema(version)), "JSON")
    raise ValueError(f"format {event_format} has no registered schema")


class IncompatibleSchemaError(RuntimeError):
    """The registry refused a schema: it would break the subject's existing readers."""

    def __init__(self, subject: str, compatibility: str, detail: str) -> None:
        super().__init__(
            f"the schema registry refused the new schema for subject {subject!r}: it is not "
            f"{compatibility} compatible with the registered versions ({detail})"
        )
        self.subject = subject
        self.compatibility = compatibility
        self.detail = detail


def compatibility_of(client: SchemaRegistryClient, subject: str) -> str:
    """The rule the registry applies to `subject`: its own, else the global one."""
    try:
        level = str(client.get_compatibility(subject))
    except SchemaRegistryError:
        level = "NONE"
    if level in ("NONE", "None", ""):
        try:
            level = str(client.get_compatibility())
        except SchemaRegistryError as exc:
            return f"UNKNOWN ({exc.error_message})"
    return level


def register(client: SchemaRegistryClient, subject: str, schema: Schema) -> int:
    """Register `schema` under `subject` (idempotent) and return its id.

    Raises `IncompatibleSchemaError` on the registry's 409 and `RegistryUnavailableError`
    when it cannot be reached.
    """
    try:
        return int(client.register_schema(subject, schema))
    except SchemaRegistryError as exc:
        if exc.http_status_code == 409:
            raise IncompatibleSchemaError(
                subject, compatibility_of(client, subject), exc.error_message
            ) from exc
        raise RegistryUnavailableError(
            f"schema registry refused to register {subject!r}: HTTP {exc.http_status_code} "
            f"{exc.error_message}"
        ) from exc
    except registry_http.HTTPError as exc:  # the client's own HTTP library (httpx2/httpx)
        raise RegistryUnavailableError(f"schema registry unreachable: {exc}") from exc


class RegistryEncoder:
    """Writes events in avro or jsonschema with Confluent framing; see the module docstring.

    The schema is registered (or, without auto-registration, looked up) in the constructor,
    so an incompatible schema stops the producer's start, not its first request.
    """

    def __init__(
        self,
        client: SchemaRegistryClient,
        event_format: EventFormat,
        topic: str,
        version: int = schemas.CURRENT_VERSION,
        *,
        auto_register: bool = True,
        validate: bool = False,
    ) -> None:
        self.format = event_format
        self.version = version
        self.subject = subject_for(topic)
        schema = schema_of(event_format, version)
        if auto_register:
            self.schema_id = register(client, self.subject, schema)
        else:
            try:
                self.schema_id = client.lookup_schema(self.subject, schema).schema_id or 0
            except SchemaRegistryError as exc:
                raise IncompatibleSchemaError(
                    self.subject,
                    compatibility_of(client, self.subject),
                    f"schema version {version} is not registered and auto-registration "
                    f"is off: {exc.error_message}",
                ) from exc
        conf: dict[str, Any] = {
            "auto.register.schemas": False,
            "use.schema.id": self.schema_id,
            **TOPIC_NAMES,
        }
        self._context = SerializationContext(topic, MessageField.VALUE)
        self._serialize: Any
        if event_format is EventFormat.AVRO:
            self._serialize = AvroSerializer(client, schema, conf=conf)
        else:
            # Validating each record against the JSON Schema costs ~70 µs per event (4x the
            # encoding, bench/RESULTS.md) and checks what `AdEvent.create` already checked
            # with the same rules (tests/unit/events/test_schemas.py ties the two together).
            conf["validate"] = validate
            self._serialize = JSONSerializer(schema, client, conf=conf, json_encode=orjson.dumps)
        self._headers = registry_headers(event_format, version)

    def value(self, event: AdEvent) -> bytes:
        try:
            out = self._serialize(schemas.record_of(event, self.version), self._context)
        except SerializationError as exc:
            raise ValueError(f"event {event.event_id} does not fit its schema: {exc}") from exc
        assert isinstance(out, bytes)
        return out

    def headers(self, event: AdEvent, caller: str | None = None) -> Headers:
        return wire.with_caller(self._headers[event.type], caller)


class RegistryDecoder:
    """Decodes Confluent-framed records (Avro or JSON Schema, any registered version).

    The writer's schema is fetched by id through the `SchemaRegistryClient` once per id
    (the registry is asked only when a new id first appears on the topic); the payload is
    then read with fastavro (resolved to `reader_version` when given) or orjson directly.
    Confluent's deserializers cost ~50 µs per Avro record here, mostly per-call machinery
    for data-contract rules adstream does not use; this path ~10 (bench/RESULTS.md). The
    decoded fields are checked by `events.model.parse_wire`, as JSON ones are, so JSON
    Schema validation is not repeated. Schemas with references are not supported.
    """

    def __init__(self, client: SchemaRegistryClient, reader_version: int | None = None) -> None:
        self._client = client
        self._reader = (
            None
            if reader_version is None
            else fastavro.parse_schema(schemas.avro_schema(reader_version))
        )
        self._readers: dict[int, Callable[[bytes], object]] = {}
        self._lock = threading.Lock()

    def __call__(self, raw: bytes) -> dict[str, object]:
        schema_id = int.from_bytes(raw[1:5], "big")
        read = self._readers.get(schema_id) or self._reader_for(schema_id)
        try:
            data = read(raw)
        except (ValueError, EOFError, IndexError, KeyError, TypeError) as exc:
            raise UndecodableValueError(f"schema id {schema_id}: {exc!r}") from exc
        if not isinstance(data, dict):
            raise UndecodableValueError(f"schema id {schema_id}: not an object")
        return data

    def _reader_for(self, schema_id: int) -> Callable[[bytes], object]:
        try:
            schema = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise UndecodableValueError(
                    f"schema id {schema_id} is unknown to the registry"
                ) from exc
            raise RegistryUnavailableError(
                f"schema registry: HTTP {exc.http_status_code} {exc.error_message}"
            ) from exc
        except registry_http.HTTPError as exc:  # the client's own HTTP library (httpx2/httpx)
            raise RegistryUnavailableError(f"schema registry unreachable: {exc}") from exc
        kind = str(schema.schema_type or "AVRO")  # the registry omits the type for Avro
        read: Callable[[bytes], object]
        if kind == "JSON":
            read = _json_payload
        elif kind == "AVRO":
            try:
                writer = fastavro.parse_schema(json.loads(schema.schema_str or ""))
            except (ValueError, fastavro.schema.SchemaParseException) as exc:
                raise UndecodableValueError(f"schema id {schema_id}: {exc}") from exc
            read = partial(_avro_payload, writer, self._reader)
        else:
            raise UndecodableValueError(f"schema id {schema_id} is a {kind} schema, not AdEvent")
        with self._lock:
            self._readers[schema_id] = read
        return read


def _json_payload(raw: bytes) -> object:
    return orjson.loads(raw[5:])


def _avro_payload(writer: Any, reader: Any, raw: bytes) -> object:
    return fastavro.schemaless_reader(io.BytesIO(raw[5:]), writer, reader)
