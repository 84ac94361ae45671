"""`adstream kafka check`, mounted the way adstream.cli will mount it."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from adstream.kafka.cli import EXIT_BAD_CONFIG, EXIT_CHECK_FAILED
from adstream.kafka.cli import app as kafka_app
from tests.unit.kafka.kafka_testkit import free_port

root = typer.Typer()
root.add_typer(kafka_app, name="kafka")


@root.callback()
def _root() -> None:
    """Stand-in for the `adstream` command."""


runner = CliRunner()


def test_check_from_java_properties_reports_the_failing_step(tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text(f"bootstrap.servers=127.0.0.1:{free_port()}\nsecurity.protocol=PLAINTEXT\n")
    result = runner.invoke(root, ["kafka", "check", "--kafka-config", str(config)])
    assert result.exit_code == EXIT_CHECK_FAILED
    assert "Failed at step: tcp" in result.output
    assert "Usual fix:" in result.output


def test_check_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS", "kafka.adstream.invalid:9092")
    result = runner.invoke(root, ["kafka", "check", "--require", "write"])
    assert result.exit_code == EXIT_CHECK_FAILED
    assert "Failed at step: dns" in result.output


def test_invalid_settings_exit_2_and_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS", "b:9098")
    monkeypatch.setenv("ADSTREAM_KAFKA_SECURITY", "iam")
    result = runner.invoke(root, ["kafka", "check"])
    assert result.exit_code == EXIT_BAD_CONFIG
    assert "iam_region" in result.output


def test_unsupported_java_key_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text("bootstrap.servers=b:9092\nretries=3\n")
    result = runner.invoke(root, ["kafka", "check", "--kafka-config", str(config)])
    assert result.exit_code == EXIT_BAD_CONFIG
    assert "retries" in result.output
