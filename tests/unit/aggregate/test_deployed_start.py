"""`adstream aggregate` in a deployment: no database URL, no start (exit 2)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from adstream.aggregate.cli import database_url
from adstream.aggregate.store_url import DEFAULT_DB_URL, StoreUrlError
from adstream.cli import app
from adstream.deployment import DeploymentSettings


def test_local_runs_default_to_the_sqlite_file() -> None:
    assert database_url(None, DeploymentSettings(deployed=False)) == DEFAULT_DB_URL


def test_a_deployment_refuses_the_default_and_says_what_to_set() -> None:
    with pytest.raises(StoreUrlError, match="ADSTREAM_AGGREGATE_DB"):
        database_url(None, DeploymentSettings(deployed=True))


def test_a_given_url_is_used_in_a_deployment() -> None:
    url = "postgresql://db.internal/counts?sslmode=verify-full"
    assert database_url(url, DeploymentSettings(deployed=True)) == url


def test_the_command_exits_2_before_touching_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSTREAM_DEPLOYED", "true")
    monkeypatch.delenv("ADSTREAM_AGGREGATE_DB", raising=False)
    # Nowhere to connect: the refusal must come before any Kafka client is built.
    monkeypatch.setenv("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS", "kafka.adstream.invalid:9092")
    result = CliRunner().invoke(app, ["aggregate"])
    assert result.exit_code == 2
    assert "no count database" in result.output
    assert "ADSTREAM_AGGREGATE_DB" in result.output
