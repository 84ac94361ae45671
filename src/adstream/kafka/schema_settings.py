"""Which wire format producers write and where the schema registry is (`ADSTREAM_SCHEMA_*`),
and the encoder/decoder those settings describe.

The registry clients are imported only when a registry is configured, so the JSON path
(the default) loads nothing more than before.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adstream.events import schemas
from adstream.events.formats import JSON_ENCODER, EventEncoder, EventFormat, FramedDecoder

ENV_PREFIX = "ADSTREAM_SCHEMA_"
_SCHEMA_TYPES = {EventFormat.AVRO: "AVRO", EventFormat.JSONSCHEMA: "JSON"}


class RegistryKind(StrEnum):
    CONFLUENT = "confluent"  # the Confluent-compatible REST API (Confluent, Apicurio ccompat)
    GLUE = "glue"  # AWS Glue Schema Registry


class SchemaSettings(BaseSettings):
    """Which format producers write, and how to reach the schema registry."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, hide_input_in_errors=True
    )

    format: EventFormat = Field(EventFormat.JSON, description="json, avro or jsonschema")
    registry: RegistryKind = RegistryKind.CONFLUENT
    version: int = Field(schemas.CURRENT_VERSION, description="AdEvent schema version written")
    auto_register: bool = Field(
        True, description="register the schema at start; else it must be registered already"
    )
    validate_on_produce: bool = Field(
        False,
        description="validate each JSON Schema record before sending (AdEvent's own checks "
        "already apply the same rules; ~70 µs per event)",
    )
    registry_url: str | None = Field(
        None, description="e.g. http://127.0.0.1:8081/apis/ccompat/v7 (adstream registry up)"
    )
    registry_username: str | None = None
    registry_password: SecretStr | None = None
    registry_ca_location: Path | None = Field(None, description="CA bundle (PEM) for https")
    registry_cert_location: Path | None = Field(None, description="client certificate (PEM)")
    registry_key_location: Path | None = Field(None, description="client key (PEM)")
    glue_registry_name: str = Field("adstream", description="AWS Glue registry name")
    glue_region: str | None = Field(None, description="AWS region of the Glue registry")

    @model_validator(mode="after")
    def _consistent(self) -> SchemaSettings:
        if self.version not in schemas.VERSIONS:
            raise ValueError(f"{ENV_PREFIX}VERSION must be one of {schemas.VERSIONS}")
        needs_url = self.format is not EventFormat.JSON and self.registry is RegistryKind.CONFLUENT
        if needs_url and not self.registry_url:
            raise ValueError(
                f"{ENV_PREFIX}FORMAT={self.format} needs {ENV_PREFIX}REGISTRY_URL "
                "(the local one: `adstream registry up`)"
            )
        if (self.registry_username is None) != (self.registry_password is None):
            raise ValueError(
                f"{ENV_PREFIX}REGISTRY_USERNAME and {ENV_PREFIX}REGISTRY_PASSWORD go together"
            )
        if (self.registry_cert_location is None) != (self.registry_key_location is None):
            raise ValueError(
                f"{ENV_PREFIX}REGISTRY_CERT_LOCATION and {ENV_PREFIX}REGISTRY_KEY_LOCATION "
                "go together"
            )
        return self

    def client_conf(self) -> dict[str, Any]:
        """The `SchemaRegistryClient` configuration (basic auth, TLS)."""
        if not self.registry_url:
            raise ValueError(f"{ENV_PREFIX}REGISTRY_URL is not set")
        conf: dict[str, Any] = {"url": self.registry_url}
        if self.registry_username is not None and self.registry_password is not None:
            secret = self.registry_password.get_secret_value()
            conf["basic.auth.user.info"] = f"{self.registry_username}:{secret}"
        if self.registry_ca_location is not None:
            conf["ssl.ca.location"] = str(self.registry_ca_location)
        if self.registry_cert_location is not None:
            conf["ssl.certificate.location"] = str(self.registry_cert_location)
            conf["ssl.key.location"] = str(self.registry_key_location)
        return conf


def event_encoder(settings: SchemaSettings, topic: str) -> EventEncoder:
    """The encoder producers use: JSON, or a registry format (registers its schema now)."""
    if settings.format is EventFormat.JSON:
        return JSON_ENCODER
    if settings.registry is RegistryKind.GLUE:
        encoder_class, glue_client = _glue("GlueEncoder")
        return encoder_class(  # type: ignore[no-any-return]
            glue_client(settings),
            settings.format,
            topic,
            settings.version,
            auto_register=settings.auto_register,
        )
    from adstream.kafka.schema_registry import RegistryEncoder, registry_client

    return RegistryEncoder(
        registry_client(settings),
        settings.format,
        topic,
        settings.version,
        auto_register=settings.auto_register,
        validate=settings.validate_on_produce,
    )


def framed_decoder(settings: SchemaSettings) -> FramedDecoder | None:
    """The decoder of registry-framed records, when a registry is configured; else None
    (such records then go to the dead-letter topic, saying that no registry is set)."""
    if settings.registry is RegistryKind.GLUE:
        decoder_class, glue_client = _glue("GlueDecoder")
        return decoder_class(glue_client(settings))  # type: ignore[no-any-return]
    if not settings.registry_url:
        return None
    from adstream.kafka.schema_registry import RegistryDecoder, registry_client

    return RegistryDecoder(registry_client(settings))


def _glue(name: str) -> tuple[Any, Any]:
    """The Glue adapter's `name` class and client factory; says which extra it needs."""
    try:
        from adstream.kafka import glue_registry
    except ImportError as exc:
        raise ValueError(
            f"{ENV_PREFIX}REGISTRY=glue needs the glue extra: pip install 'adstream[glue]' ({exc})"
        ) from exc
    return getattr(glue_registry, name), glue_registry.glue_client
