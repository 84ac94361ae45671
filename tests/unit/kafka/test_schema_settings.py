"""ADSTREAM_SCHEMA_*: which format producers write and how the registry is reached."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from adstream.events.formats import JSON_ENCODER, EventFormat, RegistryUnavailableError
from adstream.kafka.schema_settings import SchemaSettings, event_encoder, framed_decoder
from tests.support.ports import free_port


@pytest.fixture(autouse=True)
def _no_schema_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ADSTREAM_SCHEMA_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("ADSTREAM_SCHEMA_"):
            monkeypatch.delenv(name)


def test_json_is_the_default_and_needs_no_registry() -> None:
    settings = SchemaSettings()
    assert settings.format is EventFormat.JSON
    assert event_encoder(settings, "ad-events") is JSON_ENCODER
    assert framed_decoder(settings) is None


def test_a_registry_format_without_a_url_names_the_variable() -> None:
    with pytest.raises(ValidationError, match="ADSTREAM_SCHEMA_REGISTRY_URL"):
        SchemaSettings(format="avro")


def test_from_the_environment_with_basic_auth_and_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSTREAM_SCHEMA_FORMAT", "jsonschema")
    monkeypatch.setenv("ADSTREAM_SCHEMA_REGISTRY_URL", "https://registry.example:8081")
    monkeypatch.setenv("ADSTREAM_SCHEMA_REGISTRY_USERNAME", "api")
    monkeypatch.setenv("ADSTREAM_SCHEMA_REGISTRY_PASSWORD", "s3cret")
    monkeypatch.setenv("ADSTREAM_SCHEMA_REGISTRY_CA_LOCATION", "/etc/ca.pem")
    settings = SchemaSettings()
    assert settings.format is EventFormat.JSONSCHEMA
    assert settings.client_conf() == {
        "url": "https://registry.example:8081",
        "basic.auth.user.info": "api:s3cret",
        "ssl.ca.location": "/etc/ca.pem",
    }
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"registry_username": "u"}, "USERNAME and ADSTREAM_SCHEMA_REGISTRY_PASSWORD go together"),
        ({"registry_cert_location": "/c.pem"}, "CERT_LOCATION and"),
        ({"version": 3}, "VERSION must be one of"),
    ],
)
def test_inconsistent_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SchemaSettings(registry_url="http://r", **fields)  # type: ignore[arg-type]


def test_the_decoder_is_built_whenever_a_registry_is_named() -> None:
    """The aggregator reads framed records even when producers still write JSON."""
    assert framed_decoder(SchemaSettings(registry_url="http://127.0.0.1:1/apis/ccompat/v7"))


def test_an_unreachable_registry_is_reported_as_such() -> None:
    """Not an incompatibility and not a crash: the API's start says the registry is down."""
    url = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    settings = SchemaSettings(format="avro", registry_url=url)
    with pytest.raises(RegistryUnavailableError, match="unreachable"):
        event_encoder(settings, "ad-events")
