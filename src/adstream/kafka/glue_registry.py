"""Avro and JSON Schema through AWS Glue Schema Registry (``ADSTREAM_SCHEMA_REGISTRY=glue``).

Uses PyPI's ``aws-glue-schema-registry`` (extra ``glue``) on boto3's default credential
chain (the task role on ECS, a profile locally). The schema is named ``<topic>-value`` in
the registry ``ADSTREAM_SCHEMA_GLUE_REGISTRY_NAME``; a new schema is created with
``BACKWARD`` compatibility, and a version Glue's evolution check refuses raises
`IncompatibleSchemaError`. Records use Glue's framing (``0x03``, compression byte, the
16-byte schema version UUID), which the aggregator tells apart from Confluent's and JSON.

Tests run against moto's Glue mock, which stores schemas and versions but does not run
the evolution check (every version becomes ``AVAILABLE``): compatibility is enforced by the
real service only.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from uuid import UUID

import boto3
from aws_schema_registry import SchemaRegistryClient
from aws_schema_registry.avro import AvroSchema
from aws_schema_registry.codec import CodecException, decode, encode
from aws_schema_registry.exception import SchemaRegistryException
from aws_schema_registry.jsonschema import JsonSchema
from botocore.exceptions import BotoCoreError, ClientError

from adstream.events import schemas, wire
from adstream.events.formats import (
    EventFormat,
    RegistryUnavailableError,
    UndecodableValueError,
    registry_headers,
)
from adstream.events.model import AdEvent
from adstream.events.wire import Headers
from adstream.kafka.schema_registry import IncompatibleSchemaError, subject_for
from adstream.kafka.schema_settings import SchemaSettings

COMPATIBILITY = "BACKWARD"


def glue_client(settings: SchemaSettings) -> SchemaRegistryClient:
    glue = boto3.client("glue", region_name=settings.glue_region)
    return SchemaRegistryClient(glue, registry_name=settings.glue_registry_name)


def glue_schema(event_format: EventFormat, version: int) -> Any:
    if event_format is EventFormat.AVRO:
        return AvroSchema(json.dumps(schemas.avro_schema(version)))
    if event_format is EventFormat.JSONSCHEMA:
        return JsonSchema(json.dumps(schemas.json_schema(version)))
    raise ValueError(f"format {event_format} has no registered schema")


class GlueEncoder:
    """Writes events with Glue framing; the schema version is registered in the constructor."""

    def __init__(
        self,
        client: SchemaRegistryClient,
        event_format: EventFormat,
        topic: str,
        version: int = schemas.CURRENT_VERSION,
        *,
        auto_register: bool = True,
    ) -> None:
        self.format = event_format
        self.version = version
        self.subject = subject_for(topic)
        self._schema = glue_schema(event_format, version)
        definition = str(self._schema)
        try:
            if auto_register:
                found = client.get_or_register_schema_version(
                    definition=definition,
                    schema_name=self.subject,
                    data_format=self._schema.data_format,
                    compatibility_mode=COMPATIBILITY,
                )
            else:
                found = client.get_schema_by_definition(definition, self.subject)
        except SchemaRegistryException as exc:
            raise _refusal(exc, self.subject) from exc
        self.version_id: UUID = found.version_id
        self._headers = registry_headers(event_format, version)

    def value(self, event: AdEvent) -> bytes:
        try:
            payload = self._schema.write(schemas.record_of(event, self.version))
        except Exception as exc:  # fastavro / fastjsonschema: the record does not fit
            raise ValueError(f"event {event.event_id} does not fit its schema: {exc}") from exc
        return bytes(encode(payload, self.version_id))

    def headers(self, event: AdEvent, caller: str | None = None) -> Headers:
        return wire.with_caller(self._headers[event.type], caller)


def _refusal(exc: SchemaRegistryException, subject: str) -> Exception:
    cause = exc.__cause__
    text = f"{exc} ({cause})" if cause else str(exc)
    if isinstance(cause, (BotoCoreError,)) or "Throttl" in text:
        return RegistryUnavailableError(f"AWS Glue Schema Registry: {text}")
    if "evolution check failed" in text or "FAILURE" in text:
        return IncompatibleSchemaError(subject, COMPATIBILITY, text)
    return RegistryUnavailableError(f"AWS Glue Schema Registry: {text}")


class GlueDecoder:
    """Decodes Glue-framed records by their schema version (fetched once per version)."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self._client = client
        self._schemas: dict[UUID, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, raw: bytes) -> dict[str, object]:
        try:
            payload, version_id = decode(raw)
        except CodecException as exc:
            raise UndecodableValueError(f"not a Glue-framed record: {exc}") from exc
        schema = self._schema(version_id)
        try:
            data = schema.read(payload)
        except Exception as exc:  # fastavro / json: the payload does not match its schema
            raise UndecodableValueError(f"schema version {version_id}: {exc}") from exc
        if not isinstance(data, dict):
            raise UndecodableValueError(f"schema version {version_id}: not an object")
        return data

    def _schema(self, version_id: UUID) -> Any:
        known = self._schemas.get(version_id)
        if known is not None:
            return known
        try:
            version = self._client.get_schema_version(version_id)
        except SchemaRegistryException as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and "NotFound" in str(
                cause.response.get("Error", {}).get("Code", "")
            ):
                raise UndecodableValueError(f"schema version {version_id} is unknown") from exc
            raise RegistryUnavailableError(f"AWS Glue Schema Registry: {exc} ({cause})") from exc
        if version.data_format == "AVRO":
            schema: Any = AvroSchema(version.definition)
        elif version.data_format == "JSON":
            schema = JsonSchema(version.definition)
        else:
            raise UndecodableValueError(f"schema version {version_id} is {version.data_format}")
        with self._lock:
            self._schemas[version_id] = schema
        return schema
